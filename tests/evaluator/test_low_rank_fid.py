"""The low-rank FID (fewer samples than feature dimensions: the demo's Inception FID on a few
hundred images) against clean-fid's sqrtm definition and against the d x d replicate path."""

from __future__ import annotations

import numpy as np
from cleanfid import fid as cleanfid_fid

from ladder_evaluator.metrics import bootstrap
from ladder_evaluator.metrics.fid import statistics


def _reference(rng, n_ref: int, d: int) -> bootstrap.Reference:
    ref = rng.normal(size=(n_ref, d)) @ rng.normal(size=(d, d)) / np.sqrt(d)
    return bootstrap.Reference(*statistics(ref))


def test_point_fid_with_fewer_samples_than_dimensions_equals_clean_fid():
    rng = np.random.default_rng(0)
    d = 48
    ref = _reference(rng, 200, d)
    feats = rng.normal(size=(20, d)) * 1.3 + 0.2  # rank 19 < 48: clean-fid's sqrtm of a singular product
    want = cleanfid_fid.frechet_distance(*statistics(feats), ref.mu, ref.sigma)
    got = bootstrap.point_fid(feats, ref)
    assert abs(got - want) <= 1e-6 * abs(want)
    assert "root" not in vars(ref)  # the d x d square root was never needed


def test_point_fid_with_more_samples_than_dimensions_is_clean_fids():
    rng = np.random.default_rng(1)
    ref = _reference(rng, 100, 8)
    feats = rng.normal(size=(50, 8))
    want = cleanfid_fid.frechet_distance(*statistics(feats), ref.mu, ref.sigma)
    assert bootstrap.point_fid(feats, ref) == want


def test_low_rank_replicates_equal_the_full_covariance_path():
    rng = np.random.default_rng(2)
    d = 40
    ref = _reference(rng, 150, d)
    feats = rng.normal(size=(16, d)) + 0.5
    full = [ref.frechet(*bootstrap.weighted_statistics(feats, w))
            for w in bootstrap.counts(len(feats), seed=3, resamples=5)]
    reps = bootstrap.fid_replicates(feats, ref, seed=3, resamples=5)  # 16 < 40: the low-rank path
    np.testing.assert_allclose(reps, full, rtol=1e-6)  # the d x d eigvalsh rounds near 0
    assert len(set(reps)) == 5
