"""Intervals and paired decisions against textbook values and against simulation."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from ladder_api.uncertainty import (
    mean_interval,
    paired_difference,
    percentile_interval,
    quantile,
    unpaired_difference,
    wilson_interval,
    win_probability,
    z_value,
)


@pytest.mark.parametrize(("hits", "n", "low", "high"), [
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_the_textbook(hits, n, low, high):
    lo, hi = wilson_interval(hits, n, 0.95)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_wilson_interval_solves_its_defining_equation():
    """Its ends are the p where |p_hat - p| = z sqrt(p (1 - p) / n), found here by bisection."""
    hits, n, conf = 37, 50, 0.9
    z, p_hat = z_value(conf), hits / n

    def gap(p):
        return abs(p_hat - p) - z * math.sqrt(p * (1 - p) / n)

    def root(a, b):
        for _ in range(200):
            m = (a + b) / 2
            a, b = (m, b) if (gap(a) > 0) == (gap(m) > 0) else (a, m)
        return (a + b) / 2

    lo, hi = wilson_interval(hits, n, conf)
    assert lo == pytest.approx(root(1e-12, p_hat), abs=1e-9)
    assert hi == pytest.approx(root(p_hat, 1 - 1e-12), abs=1e-9)


def test_z_and_quantile():
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([0.0, 10.0], 0.25) == 2.5
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="confidence"):
            z_value(bad)
    with pytest.raises(ValueError):
        wilson_interval(5, 4, 0.95)


def test_mean_interval_covers_the_true_mean_at_its_rate():
    rng = random.Random(3)
    covered = 0
    trials = 400
    for _ in range(trials):
        xs = [rng.expovariate(1.0) for _ in range(200)]  # skewed, true mean 1
        _, se, lo, hi = mean_interval(xs, 0.9)
        covered += lo <= 1.0 <= hi
        assert se == pytest.approx((hi - lo) / (2 * z_value(0.9)))
    # 360 expected; a binomial(400, 0.9) falls outside [335, 380] with probability < 1e-4
    assert 335 <= covered <= 380


def test_percentile_bootstrap_of_a_mean_covers_at_its_rate():
    """The generic machinery: resample, take the central share, check coverage by simulation."""
    rng = np.random.default_rng(5)
    covered, trials, b = 0, 200, 300
    for _ in range(trials):
        xs = rng.normal(2.0, 1.0, 100)
        reps = xs[rng.integers(0, 100, (b, 100))].mean(axis=1)
        lo, hi = percentile_interval(reps.tolist(), 0.95)
        covered += lo <= 2.0 <= hi
    assert 180 <= covered <= 198  # 190 expected (percentile intervals run slightly narrow)


def test_paired_difference_sees_what_separate_intervals_miss():
    """Two settings sharing noise: each has wide replicates, their difference is narrow."""
    rng = random.Random(7)
    common = [rng.gauss(0.0, 1.0) for _ in range(500)]
    a = [10.0 + c for c in common]
    b = [10.3 + c + rng.gauss(0.0, 0.05) for c in common]
    a_lo, a_hi = percentile_interval(a, 0.95)
    b_lo, b_hi = percentile_interval(b, 0.95)
    assert a_hi > b_lo  # the separate intervals overlap...
    lo, hi = paired_difference(a, b, 0.95)
    assert hi < 0  # ...the paired difference excludes 0: a is better
    assert lo == pytest.approx(-0.3 - 1.96 * 0.05, abs=0.03)
    with pytest.raises(ValueError, match="same"):
        paired_difference(a, b[:-1], 0.95)


def test_unpaired_difference_is_the_normal_interval():
    lo, hi = unpaired_difference((3.0, 0.3), (2.0, 0.4), 0.95)
    assert (lo + hi) / 2 == pytest.approx(1.0)
    assert hi - lo == pytest.approx(2 * 1.959964 * 0.5, abs=1e-5)


def test_win_probability_rechooses_the_best_setting_per_replicate():
    # size 1: two settings, each best in half the replicates; size 2 in between
    cands = {1: [[1.0, 5.0, 1.0, 5.0], [5.0, 1.0, 5.0, 1.0]], 2: [[2.0, 2.0, 0.5, 2.0]]}
    assert win_probability(cands) == {1: 0.75, 2: 0.25}
    assert win_probability({1: [[1.0, 2.0]], 2: [[1.0, 3.0]]}) == {1: 0.75, 2: 0.25}
    assert win_probability(cands, lower_is_better=False) == {1: 1.0, 2: 0.0}
