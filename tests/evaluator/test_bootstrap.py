"""Bootstrap replicates of FID and means: against direct computation and by coverage on data
whose true FID is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from cleanfid import fid as cleanfid_fid

from ladder_api.uncertainty import percentile_interval
from ladder_evaluator.metrics import bootstrap
from ladder_evaluator.metrics.fid import statistics


def _spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_index_sets_depend_only_on_seed_count_and_replicate():
    a = bootstrap.index_set(50, seed=3, replicate=7)
    assert np.array_equal(a, bootstrap.index_set(50, seed=3, replicate=7))
    assert a.min() >= 0 and a.max() < 50
    assert not np.array_equal(a, bootstrap.index_set(50, seed=3, replicate=8))
    assert not np.array_equal(a, bootstrap.index_set(50, seed=4, replicate=7))
    assert not np.array_equal(a, bootstrap.index_set(50, seed=3, replicate=7, stream=bootstrap.REFERENCE))


def test_weighted_statistics_equal_the_statistics_of_the_resample():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 5))
    idx = bootstrap.index_set(40, seed=1, replicate=0)
    mu, sigma = bootstrap.weighted_statistics(feats, np.bincount(idx, minlength=40).astype(float))
    mu2, sigma2 = statistics(feats[idx])
    np.testing.assert_allclose(mu, mu2, atol=1e-12)
    np.testing.assert_allclose(sigma, sigma2, atol=1e-12)


def test_frechet_without_sqrtm_equals_clean_fid():
    rng = np.random.default_rng(1)
    for d in (2, 3, 16):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _spd(rng, d), _spd(rng, d)
        ours = bootstrap.Reference(mu2, s2).frechet(mu1, s1)
        assert ours == pytest.approx(cleanfid_fid.frechet_distance(mu1, s1, mu2, s2), rel=1e-7, abs=1e-9)


def test_fid_interval_covers_the_true_fid_at_its_rate():
    """Generated features N(m, I), reference N(0, diag(1, 2)) given exactly: true FID is |m|^2 +
    tr(I) + tr(S) - 2 tr sqrt(S) in closed form. The 90% percentile interval from 100 replicates
    must cover it in about 90% of 60 independent experiments, and be no wider than the delta
    method says (FID's standard error here is ~2 sqrt(|m|^2 / n) = 0.11, plus the covariance's)."""
    d, n, trials, b = 2, 400, 60, 100
    m, s_ref = np.array([1.0, 0.5]), np.diag([1.0, 2.0])
    truth = m @ m + 2.0 + 3.0 - 2.0 * (1.0 + np.sqrt(2.0))
    ref = bootstrap.Reference(np.zeros(d), s_ref)
    rng = np.random.default_rng(2)
    covered, widths = 0, []
    for t in range(trials):
        feats = m + rng.normal(size=(n, d))
        value = ref.frechet(*statistics(feats))
        got = bootstrap.fid_measurement(value, feats, ref, seed=t, resamples=b, confidence=0.9)
        lo, hi = got["ci_low"], got["ci_high"]
        assert (lo, hi) == pytest.approx(percentile_interval(got["replicates"], 0.9))
        covered += lo <= truth <= hi
        widths.append(hi - lo)
    assert covered >= 46  # binomial(60, 0.9) is below 46 with probability < 0.001
    assert 0.25 < np.mean(widths) < 0.6


def test_resampling_the_reference_widens_the_interval():
    rng = np.random.default_rng(4)
    feats, ref_feats = rng.normal(0.3, 1.0, (200, 3)), rng.normal(0.0, 1.0, (200, 3))
    ref = bootstrap.Reference(*statistics(ref_feats))
    fixed = bootstrap.fid_replicates(feats, ref, seed=0, resamples=200)
    both = bootstrap.fid_replicates(feats, ref, seed=0, resamples=200, ref_feats=ref_feats)
    assert np.std(both) > 1.2 * np.std(fixed)


def test_mean_replicates_are_means_of_the_shared_resamples():
    vals = np.arange(30, dtype=float)
    reps = bootstrap.mean_replicates(vals, seed=9, resamples=3)
    for b, r in enumerate(reps):
        assert r == pytest.approx(vals[bootstrap.index_set(30, 9, b)].mean())


def test_cost_at_the_papers_scale():
    """The module docstring's claim: ~2.9e11 flops per replicate at N = 30,000, d = 2048, so 100
    replicates at 200 GFLOP/s (a CPU) take under three minutes per grid point."""
    flops = bootstrap.fid_flops(30_000, 2048)
    assert 2.5e11 < flops < 3.2e11
    assert 100 * flops / 200e9 < 180


def test_the_interval_is_centred_on_the_measured_fid_where_resampling_inflates_it():
    """200 samples of 64 features: raw resample FIDs lie far above the full-sample FID (repeated
    samples shrink the covariance's effective size); the recorded interval keeps their spread
    around the measured value."""
    rng = np.random.default_rng(6)
    ref_feats, feats = rng.normal(size=(1000, 64)), rng.normal(0.1, 1.0, (200, 64))
    ref = bootstrap.Reference(*statistics(ref_feats))
    value = ref.frechet(*statistics(feats))
    raw = bootstrap.fid_replicates(feats, ref, seed=0, resamples=60)
    assert percentile_interval(raw, 0.95)[0] > value  # the plain interval misses the measurement
    m = bootstrap.fid_measurement(value, feats, ref, seed=0, resamples=60, confidence=0.95)
    assert m["ci_low"] < value < m["ci_high"]
    assert np.mean(m["replicates"]) == pytest.approx(value)
    assert m["stderr"] == pytest.approx(np.std(raw, ddof=1))


def test_adherence_and_clip_measurements():
    hits = np.array([1.0] * 45 + [0.0] * 5)
    m = bootstrap.proportion_measurement(hits, seed=0, resamples=50, confidence=0.95)
    assert m["value"] == 0.9 and m["interval"] == "wilson"
    assert (m["ci_low"], m["ci_high"]) == pytest.approx((0.7864, 0.9565), abs=1e-4)  # Wilson 45/50
    assert len(m["replicates"]) == 50 and np.mean(m["replicates"]) == pytest.approx(0.9)
    sims = np.random.default_rng(0).normal(0.3, 0.02, 400)
    c = bootstrap.mean_measurement(sims, seed=0, resamples=50, confidence=0.95)
    assert c["stderr"] == pytest.approx(np.std(sims, ddof=1) / 20)
    assert c["ci_low"] < c["value"] < c["ci_high"]


def test_over_seeds_averages_values_and_replicates_and_records_the_spread():
    a = dict(value=1.0, replicates=[0.9, 1.1, 1.0], seed=0)
    b = dict(value=3.0, replicates=[2.7, 3.3, 3.0])
    got = bootstrap.over_seeds([a, b], 0.9)
    assert got["value"] == 2.0 and got["seed_values"] == [1.0, 3.0]
    assert got["replicates"] == pytest.approx([1.8, 2.2, 2.0])
    assert got["seed_spread"] == pytest.approx(np.std([1.0, 3.0], ddof=1))
    assert got["ci_low"] < 2.0 < got["ci_high"]
    assert bootstrap.over_seeds([a], 0.9) is a
