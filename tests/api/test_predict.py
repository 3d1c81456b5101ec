"""The frontier predictor: its t distribution against tables, and laws it must recover."""

from __future__ import annotations

import math
import random

import pytest

from ladder_api.frontier import sampling_cost
from ladder_api.predict import (
    Unfinished,
    fit_power_law,
    predict_frontier,
    prediction_words,
    t_cdf,
    t_quantile,
)
from ladder_api.status import Result, result_id


@pytest.mark.parametrize(("df", "q975"), [(1, 12.706), (2, 4.303), (5, 2.571), (30, 2.042)])
def test_t_quantiles_match_the_table(df, q975):
    assert t_quantile(0.975, df) == pytest.approx(q975, abs=1e-3)
    assert t_quantile(0.025, df) == pytest.approx(-q975, abs=1e-3)


def test_t_cdf_matches_closed_forms():
    for t in (-3.0, -0.5, 0.0, 1.0, 4.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)  # Cauchy
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


A, B, SIGMA = 3.0, -0.35, 0.05  # log FID = A + B log G + N(0, SIGMA^2)
GFLOPS = [1.0, 2.2, 4.8, 10.0, 21.0]


def _law(g: float) -> float:
    return math.exp(A + B * math.log(g))


def test_the_fit_recovers_a_known_law_within_its_intervals_at_the_stated_rate():
    rng = random.Random(1)
    covered_slope = covered_intercept = 0
    trials = 400
    for _ in range(trials):
        ys = [_law(g) * math.exp(rng.gauss(0, SIGMA)) for g in GFLOPS]
        law = fit_power_law(GFLOPS, ys)
        lo, hi = law.slope_interval(0.9)
        covered_slope += lo <= B <= hi
        lo, hi = law.intercept_interval(0.9)
        covered_intercept += lo <= A <= hi
    # binomial(400, 0.9): 360 expected, outside [340, 378] with probability < 0.002
    assert 340 <= covered_slope <= 378 and 340 <= covered_intercept <= 378


def test_exact_data_gives_the_law_itself():
    law = fit_power_law(GFLOPS, [_law(g) for g in GFLOPS])
    assert (law.intercept, law.slope) == (pytest.approx(A), pytest.approx(B))
    assert law.scatter == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least 3"):
        fit_power_law(GFLOPS[:2], [1.0, 2.0])


def _result(width: int, g: float, steps: int, fid: float) -> Result:
    paper, with_g = sampling_cost(g / 10.0, steps, 2.0)
    return Result(id=result_id(width, 100, "ddim", steps, 2.0, "fid-inception"), width=width,
                  checkpoint_step=100, sampler="ddim", steps=steps, guidance=2.0, metric="fid-inception",
                  value=fid, num_samples=1000, gflops_per_forward=g, sampling_cost=paper,
                  sampling_cost_with_guidance=with_g)


def test_holding_out_the_largest_finished_size_it_is_predicted_within_the_interval():
    """Five sizes drawn from the law (one setting each at 10 steps); the four smaller predict the
    largest: its measured FID lies in the 95% prediction interval, and since the law says larger
    is better, it is predicted to win the budgets it can meet."""
    rng = random.Random(4)
    results = [_result(16 * (i + 1), g, 10, _law(g) * math.exp(rng.gauss(0, SIGMA)))
               for i, g in enumerate(GFLOPS)]
    finished, held = results[:-1], results[-1]
    target = Unfinished(held.width, held.gflops_per_forward, held.sampling_cost)
    budgets = sorted({r.sampling_cost for r in results})
    preds = predict_frontier(finished, [target], budgets, 0.95)
    assert [p.budget for p in preds] == [held.sampling_cost]  # it cannot meet smaller budgets
    (p,) = preds
    assert p.low <= held.value <= p.high and p.low < p.fid < p.high
    assert p.low <= _law(held.gflops_per_forward) <= p.high
    assert p.win_probability > 0.5 and p.sizes == 4 and p.slope < 0
    (words,) = prediction_words(preds)
    assert words.startswith(f"c{held.width} is predicted to win budgets from {held.sampling_cost:.4g} on")


def test_no_prediction_without_three_finished_sizes_or_against_the_law():
    two = [_result(16, 1.0, 10, 20.0), _result(32, 2.2, 10, 18.0)]
    assert predict_frontier(two, [Unfinished(64, 4.8, 0.1)], [10.0], 0.95) == []
    worse = [_result(16, 1.0, 10, 10.0), _result(32, 2.2, 10, 12.0), _result(48, 4.8, 10, 14.5)]
    preds = predict_frontier(worse, [Unfinished(64, 10.0, 0.1)], [10.0], 0.95)
    assert preds[0].win_probability < 0.5
    assert prediction_words(preds)[0].startswith("c64 is not predicted to win any budget")


def test_the_status_summary_carries_the_prediction_for_sizes_not_done():
    from ladder_api.frontier import summarize

    rng = random.Random(4)
    results = [_result(16 * (i + 1), g, 10, _law(g) * math.exp(rng.gauss(0, SIGMA)))
               for i, g in enumerate(GFLOPS[:4])]
    todo = Unfinished(80, GFLOPS[4], sampling_cost(GFLOPS[4] / 10.0, 10, 2.0)[0])
    s = summarize(results, 4, 5, unfinished=[todo])
    assert len(s.predictions) == 1 and s.predictions[0].startswith("c80 is predicted to win budgets from")
    assert summarize(results, 4, 4).predictions == []
