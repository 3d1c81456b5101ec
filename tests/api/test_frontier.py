"""The frontier on hand-made results whose answers are worked out by hand."""

from __future__ import annotations

import pytest

from ladder_api.frontier import (
    best_over_guidance,
    fid_results,
    forwards_per_step,
    frontier,
    merge_equal,
    pareto,
    pick_fid_metric,
    sampling_cost,
    summarize,
    thin,
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
    # the frontier's two budgets won by c64@20 g4 (1.4 and 2.0) are one point, at the first
    assert [p.budget for p in s.frontier] == pytest.approx([0.7, 1.3, 1.4, 2.6, 4.0])
    assert s.frontier == merge_equal(frontier(fid_results(results, "fid-inception")))
    assert len(s.pareto) == 5
    offline = summarize(results, 2, 3, fid_metric="fid-digits-classifier")
    assert offline.best_fid == 1.0 and offline.fid_metric == "fid-digits-classifier"
    empty = summarize([], 0, 3)
    assert empty.best_fid is None and empty.frontier == [] and empty.fid_metric is None
    # the summary serialises on the wire like the status expects
    assert s.to_wire()["fidMetric"] == "fid-inception"


def test_failed_measurements_never_enter_the_frontier():
    failed = Result.model_validate({**res(64, 4, 2.0, 1.0).to_wire(), "value": float("nan")})
    assert failed.failed and failed.value is None and "nan" in failed.error
    assert fid_results(_grid() + [failed], "fid-inception") == fid_results(_grid(), "fid-inception")
    assert frontier(_grid() + [failed]) == frontier(_grid())
    assert pareto(_grid() + [failed]) == pareto(_grid())
    assert summarize(_grid() + [failed], 3, 3) == summarize(_grid(), 3, 3)


def test_a_result_has_a_value_or_an_error():
    wire = res(64, 4, 2.0, 1.0).to_wire()
    with pytest.raises(ValueError, match="either a value or an error"):
        Result.model_validate({**wire, "error": "both"})
    with pytest.raises(ValueError, match="either a value or an error"):
        Result.model_validate({**wire, "value": None})
    minus = Result.model_validate({**wire, "value": float("-inf")})
    assert minus.error.startswith("the metric came out -inf")


def test_thin_keeps_the_ends_and_spreads_the_rest_evenly():
    pts = pareto([res(64, n, 2.0, 1000.0 - n) for n in range(1, 201)])
    assert len(pts) == 200
    kept = thin(pts, 64)
    assert len(kept) == 64 and kept[0] == pts[0] and kept[-1] == pts[-1]
    assert len({p.steps for p in kept}) == 64, "no point kept twice"
    gaps = [b.steps - a.steps for a, b in zip(kept, kept[1:], strict=False)]
    assert max(gaps) - min(gaps) <= 1, "evenly spaced by rank"
    assert thin(pts[:10], 64) == pts[:10] and thin(pts, None) == pts
    s = summarize([res(64, n, 2.0, 1000.0 - n) for n in range(1, 201)], 1, 1)
    assert len(s.frontier) == len(s.pareto) == 64 and s.best_fid == 800.0
    whole = summarize([res(64, n, 2.0, 1000.0 - n) for n in range(1, 201)], 1, 1, max_points=None)
    assert len(whole.pareto) == 200
