"""The frontier on hand-made results whose answers are worked out by hand."""

from __future__ import annotations

import pytest

from ladder_api.frontier import (
    best_over_guidance,
    fid_results,
    forwards_per_step,
    frontier,
    frontier_rows,
    frontier_words,
    merge_equal,
    pareto,
    pick_fid_metric,
    sampling_cost,
    summarize,
    thin,
)
from ladder_api.status import Result, result_id

COST = {64: 0.07, 96: 0.13, 128: 0.20}
DECISION = 7  # frontier_rows' column: budget, size, sampler, steps, guidance, cost, FID, decision, ties


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


def _with_reps(r: Result, reps: list[float]) -> Result:
    return r.model_copy(update={"replicates": reps, "stderr": 0.1, "ci_low": min(reps), "ci_high": max(reps)})


def _common(n=200, seed=11):
    import random

    rng = random.Random(seed)
    return [rng.gauss(0.0, 1.0) for _ in range(n)], rng


def test_a_width_wins_only_when_the_paired_difference_separates_it():
    """c64 and c96 share the resamples' noise (common); c96 is 0.3 worse with tiny independent
    noise, so the paired interval of the difference excludes 0: c64 wins, decided. c128 sits
    within noise of c64 (independent +-0.5 around +0.05): a tie."""
    common, rng = _common()
    a = _with_reps(res(64, 10, 2.0, 10.0), [10.0 + c for c in common])
    b = _with_reps(res(96, 10, 2.0, 10.3), [10.3 + c + rng.gauss(0, 0.02) for c in common])
    pts = frontier([a, b], budgets=[2.0])
    assert (pts[0].width, pts[0].ties, pts[0].win_probability) == (64, [], 1.0)
    c = _with_reps(res(128, 10, 2.0, 10.05), [10.05 + c + rng.gauss(0, 0.5) for c in common])
    (p,) = frontier([a, b, c], budgets=[2.0])
    assert p.width == 64 and p.ties == [128]
    assert 0.3 < p.win_probability < 0.8
    assert (p.fid_low, p.fid_high) == (a.ci_low, a.ci_high)
    other_seed = c.model_copy(update={"settings": {"seed": "1"}})  # other resamples: not paired
    (q,) = frontier([a, b, other_seed], budgets=[2.0])
    assert q.win_probability is None and q.ties == [128]  # from the standard errors


def test_without_replicates_ties_come_from_standard_errors():
    a = res(64, 10, 2.0, 10.0).model_copy(update={"stderr": 0.1})
    near = res(96, 10, 2.0, 10.2).model_copy(update={"stderr": 0.1})  # 0.2 < 1.96 * 0.141
    far = res(128, 10, 2.0, 10.5).model_copy(update={"stderr": 0.1})
    (p,) = frontier([a, near, far], budgets=[3.0])
    assert p.ties == [96] and p.win_probability is None
    (bare,) = frontier([res(64, 10, 2.0, 10.0), res(96, 10, 2.0, 10.01)], budgets=[3.0])
    assert bare.ties == []  # no uncertainty recorded: nothing to call a tie, and rows say so
    s = summarize([res(64, 10, 2.0, 10.0), res(96, 10, 2.0, 10.01)], 2, 2)
    assert frontier_rows(s)[0][DECISION] == "no interval"


def test_rows_and_words_say_tie_or_win():
    common, rng = _common()
    a = _with_reps(res(64, 10, 2.0, 10.0), [10.0 + c for c in common])
    tie = _with_reps(res(96, 20, 2.0, 10.02), [10.02 + c + rng.gauss(0, 0.5) for c in common])
    s = summarize([a, tie], 2, 2, confidence=0.9)
    rows = frontier_rows(s)
    assert rows[0][DECISION].startswith("wins (p=1.00)") and rows[0][DECISION - 1].startswith("10.000 [")
    assert rows[1][DECISION] == "tie with c96"
    words = frontier_words(s)
    assert words[0] == "At budget 0.7, c64 is best at 90%."
    assert words[1].startswith("At budget 2.6, c64, c96 are not distinguishable at 90%")


def test_incremental_win_probability_equals_the_direct_computation_at_every_budget():
    """The frontier updates each resample's leader as the budget grows; the direct computation
    (uncertainty.win_probability over the results within each budget) must agree."""
    from ladder_api.uncertainty import win_probability

    common, rng = _common(n=50)
    results = []
    for width in COST:
        for steps in (5, 10, 20):
            v = 20.0 - width / 64 - steps / 10 + rng.gauss(0, 0.3)
            reps = [round(v + c * 0.2 + rng.gauss(0, 0.3), 1) for c in common]  # rounding makes exact ties
            results.append(_with_reps(res(width, steps, 2.0, v), reps))
    for p in frontier(results):
        within = [r for r in results if r.sampling_cost <= p.budget + 1e-12]
        per_width: dict[int, list] = {}
        for r in within:
            per_width.setdefault(r.width, []).append(r.replicates)
        assert p.win_probability == pytest.approx(win_probability(per_width)[p.width])


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
    # the same decision at both budgets: one point (it holds until the next one)
    assert [(p.width, p.sampler) for p in dpmpp.frontier] == [(96, "dpmpp_2m")]
    assert [(p.width, p.fid) for p in pooled.frontier] == [(96, 20.0)]
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


def test_each_point_lists_the_settings_not_distinguishable_from_the_winner():
    """Worked by hand with standard errors 0.1 (an unpaired difference's half-width at 95% is
    1.96 x 0.141 = 0.277): at budget 3, c64 at 10 steps (10.0) wins; c64 at 20 steps (10.2, its
    own size) and c96 at 10 steps (10.25) are within 0.277, c128 at 10 steps (10.5) is not. The
    width ties still compare each width's best setting only: c96 is tied, c128 is not."""
    se = {"stderr": 0.1}
    results = [res(64, 10, 2.0, 10.0).model_copy(update=se), res(64, 20, 2.0, 10.2).model_copy(update=se),
               res(96, 10, 2.0, 10.25).model_copy(update=se), res(128, 10, 2.0, 10.5).model_copy(update=se)]
    (p,) = frontier(results, budgets=[3.0])
    assert (p.width, p.steps, p.ties) == (64, 10, [96])
    assert [(t.width, t.steps, t.fid) for t in p.tie_settings] == [(64, 20, 10.2), (96, 10, 10.25)]
    assert p.tie_settings_total == 2
    (cheap,) = frontier(results, budgets=[1.35])  # c96 at 10 steps costs 1.3, c64 at 20 steps 1.4
    assert [(t.width, t.steps) for t in cheap.tie_settings] == [(96, 10)]
    row = frontier_rows(summarize(results, 3, 3, budgets=[3.0]))[0]
    assert row[-1] == "c64 ddim 20 steps g2 (10.200), c96 ddim 10 steps g2 (10.250)"


def test_the_status_lists_at_most_max_tie_settings_and_the_report_all():
    """The status summary is bounded (ladder_api.limits.MAX_TIE_SETTINGS listed, the count kept);
    the report (max_points None) lists every tied setting."""
    from ladder_api.limits import MAX_TIE_SETTINGS

    n = MAX_TIE_SETTINGS + 3
    results = [res(64, 10, 2.0, 10.0).model_copy(update={"stderr": 0.1})]
    results += [res(64, 10, float(g), 10.0 + g / 100).model_copy(update={"stderr": 0.1})
                for g in range(3, 3 + n)]
    status = summarize(results, 1, 1).frontier[-1]
    report = summarize(results, 1, 1, max_points=None).frontier[-1]
    assert status.tie_settings_total == report.tie_settings_total == n
    assert len(status.tie_settings) == MAX_TIE_SETTINGS and len(report.tie_settings) == n
    assert status.tie_settings == report.tie_settings[:MAX_TIE_SETTINGS]
    assert frontier_rows(summarize(results, 1, 1), max_listed=2)[-1][-1].endswith(f"(+{n - 2} more)")
