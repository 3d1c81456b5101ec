"""The frontier on hand-made results whose answers are worked out by hand."""

from __future__ import annotations

import pytest

from ladder_api.frontier import (
    best_over_guidance,
    fid_results,
    forwards_per_step,
    frontier,
    pareto,
    pick_fid_metric,
    sampling_cost,
    summarize,
)
from ladder_api.status import Result, result_id

COST = {64: 0.07, 96: 0.13, 128: 0.20}


def res(width, steps, guidance, fid, metric="fid-inception", sampler="ddim", step=1000) -> Result:
    paper, with_g = sampling_cost(COST[width], steps, guidance)
    return Result(
        id=result_id(width, step, sampler, steps, guidance, metric), width=width, checkpoint_step=step,
        sampler=sampler, steps=steps, guidance=guidance, metric=metric, value=fid, num_samples=100,
        gflops_per_forward=COST[width] * 789.3, sampling_cost=paper, sampling_cost_with_guidance=with_g,
    )


def test_sampling_cost_counts_guidance_only_when_both_passes_run():
    assert sampling_cost(0.13, 20, 7.5) == pytest.approx((2.6, 5.2))
    assert sampling_cost(0.13, 20, 1.0) == pytest.approx((2.6, 2.6))
    assert sampling_cost(0.13, 20, None) == pytest.approx((2.6, 2.6))
    assert forwards_per_step(0.0) == 1 and forwards_per_step(1.5) == 2
    with pytest.raises(ValueError, match="steps"):
        sampling_cost(0.1, 0, 2.0)


def test_pick_fid_metric_prefers_inception_and_is_deterministic():
    offline = [res(64, 4, 2.0, 9.0, metric="fid-digits-classifier"), res(64, 4, 2.0, 0.5, metric="adherence")]
    assert pick_fid_metric(offline) == "fid-digits-classifier"
    assert pick_fid_metric(offline + [res(64, 4, 2.0, 30.0)]) == "fid-inception"
    assert pick_fid_metric([res(64, 4, 2.0, 0.5, metric="clip-score")]) is None
    assert pick_fid_metric(offline, "fid-x") == "fid-x"


def _grid():
    return [
        res(64, 10, 2.0, 30.0),   # cost 0.7
        res(64, 20, 2.0, 27.0),   # cost 1.4
        res(64, 20, 4.0, 26.0),   # cost 1.4 (better guidance)
        res(96, 10, 2.0, 28.0),   # cost 1.3
        res(96, 20, 2.0, 24.0),   # cost 2.6
        res(128, 10, 2.0, 29.0),  # cost 2.0: dominated by c96@1.3
        res(128, 20, 2.0, 22.0),  # cost 4.0
    ]


def test_frontier_takes_the_best_within_each_budget():
    pts = frontier(_grid())
    assert [p.budget for p in pts] == pytest.approx([0.7, 1.3, 1.4, 2.0, 2.6, 4.0])
    assert [(p.width, p.steps, p.guidance) for p in pts] == [
        (64, 10, 2.0), (96, 10, 2.0), (64, 20, 4.0), (64, 20, 4.0), (96, 20, 2.0), (128, 20, 2.0)
    ]
    given = frontier(_grid(), budgets=[0.5, 3.0])
    assert [(p.budget, p.width, p.fid) for p in given] == [(3.0, 96, 24.0)]


def test_frontier_with_guidance_cost_doubles_guided_costs():
    pts = frontier(_grid(), budgets=[2.0], cost="with_guidance")
    # with guidance counted: c64@10 costs 1.4, c96@10 2.6 -> only c64@10 fits 2.0
    assert [(p.width, p.steps, p.cost) for p in pts] == [(64, 10, pytest.approx(1.4))]


def test_pareto_front_drops_dominated_points():
    pts = pareto(_grid())
    assert [(p.width, p.steps, p.fid) for p in pts] == [
        (64, 10, 30.0), (96, 10, 28.0), (64, 20, 26.0), (96, 20, 24.0), (128, 20, 22.0)
    ]
    costs = [p.cost for p in pts]
    assert costs == sorted(costs)


def test_best_over_guidance_per_width_and_steps():
    pts = best_over_guidance(_grid())
    assert [(p.width, p.steps, p.guidance, p.fid) for p in pts] == [
        (64, 10, 2.0, 30.0), (64, 20, 4.0, 26.0), (96, 10, 2.0, 28.0), (96, 20, 2.0, 24.0),
        (128, 10, 2.0, 29.0), (128, 20, 2.0, 22.0),
    ]


def test_only_the_newest_checkpoint_of_each_width_counts():
    old = res(128, 20, 2.0, 5.0, step=500)
    chosen = fid_results(_grid() + [old], "fid-inception")
    assert old not in chosen and len(chosen) == 7
    s = summarize(_grid() + [old], 3, 3)
    assert s.best_fid == 22.0 and s.best_width == 128


def test_summarize_fills_progress_metric_frontier_and_pareto():
    results = _grid() + [res(64, 10, 2.0, 0.9, metric="adherence"),
                         res(64, 10, 2.0, 1.0, metric="fid-digits-classifier")]
    s = summarize(results, 2, 3)
    assert s.progress == "2/3" and s.sizes_done == 2 and s.sizes_total == 3
    assert s.fid_metric == "fid-inception"
    assert s.best_fid == 22.0 and s.best_width == 128
    assert len(s.frontier) == 6 and len(s.pareto) == 5
    offline = summarize(results, 2, 3, fid_metric="fid-digits-classifier")
    assert offline.best_fid == 1.0 and offline.fid_metric == "fid-digits-classifier"
    empty = summarize([], 0, 3)
    assert empty.best_fid is None and empty.frontier == [] and empty.fid_metric is None
    # the summary serialises on the wire like the status expects
    assert s.to_wire()["fidMetric"] == "fid-inception"


def test_per_sampler_frontiers_differ_where_the_samplers_disagree():
    """At budget 0.6, DDIM's best is c64 (cost 0.56) and DPM-Solver++'s is c96 (0.52): pooled,
    the DPM-Solver++ point would decide the headline although the paper's is DDIM."""
    results = [
        res(64, 8, 2.0, 30.0), res(96, 4, 2.0, 35.0),                                   # DDIM
        res(64, 8, 2.0, 28.0, sampler="dpmpp_2m"), res(96, 4, 2.0, 20.0, sampler="dpmpp_2m"),
    ]
    s = summarize(results, 2, 2, views=["ddim", "dpmpp_2m", "pooled"])
    ddim, dpmpp, pooled = s.views
    assert [v.sampler for v in s.views] == ["ddim", "dpmpp_2m", "pooled"]
    assert s.frontier_sampler == "ddim" and s.frontier == ddim.frontier
    assert [(p.budget, p.width, p.sampler) for p in ddim.frontier] == [
        (pytest.approx(0.52), 96, "ddim"), (pytest.approx(0.56), 64, "ddim")]
    assert [(p.width, p.sampler) for p in dpmpp.frontier] == [(96, "dpmpp_2m"), (96, "dpmpp_2m")]
    assert [(p.width, p.fid) for p in pooled.frontier] == [(96, 20.0), (96, 20.0)]
    assert (s.best_fid, s.best_width) == (30.0, 64), "the headline's best, not the pooled one"
    assert [p.width for p in ddim.pareto] == [96, 64] and [p.width for p in dpmpp.pareto] == [96]
    assert summarize(results, 2, 2).frontier_sampler == "pooled", "the default of a bare call"


def test_best_over_guidance_keeps_to_the_named_scales():
    """7.5 is in the grid for Table 1; Figure 9 takes the best over 1.5..8 without it."""
    results = [res(64, 8, 7.0, 30.0), res(64, 8, 7.5, 25.0), res(64, 8, 8.0, 31.0)]
    paper = [1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert [p.guidance for p in best_over_guidance(results, guidance=paper)] == [7.0]
    assert [p.guidance for p in best_over_guidance(results)] == [7.5]
    s = summarize(results, 1, 1, views=["ddim"], guidance=paper)
    assert [p.guidance for p in s.frontier] == [7.0] and s.best_fid == 30.0
    assert s.best_of_guidance == paper
