"""Bootstrap replicates of one grid point's metrics, on resample index sets every evaluator shares.

Replicate b resamples the N generated samples with replacement by an index set seeded only by
(evaluation.seed, N, b) (and a separate stream for the reference images), so every size's
evaluator, on any machine, draws the same index sets: replicate b of two results is the same
resample of the same prompts and starting noise, and ladder_api.uncertainty compares them paired.

FID of a replicate without `sqrtm`: with R = sqrt(S_ref) (one symmetric eigendecomposition per
reference, shared by all replicates when the reference is fixed), tr sqrt(S S_ref) equals
tr sqrt(R S R), and R S R is symmetric positive semi-definite, so its trace root is the sum of the
square roots of its eigenvalues (eigvalsh, no eigenvectors). Cost per replicate at N samples and
d-dimensional features: the weighted covariance 2 N d^2 flops, R S R 4 d^3, eigvalsh ~ 4/3 d^3
(`fid_flops` computes it); at the paper's N = 30,000 and Inception's d = 2048 that is ~2.9e11 flops,
about a second on a CPU at a few hundred GFLOP/s: B = 100 resamples add ~2 minutes per grid point,
against hours of sampling for 30,000 images.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from ladder_api import uncertainty

GENERATED, REFERENCE = 0, 1  # index-set streams
# Below this feature dimension the replicates' small matrix products are run on one BLAS thread:
# threads only add synchronization there, and on a shared machine they cost 10x (measured: 100
# replicates at d = 64, 2 busy cores: 3.1 s threaded, 0.4 s on one thread).
ONE_THREAD_BELOW_DIM = 512


def index_set(n: int, seed: int, replicate: int, stream: int = GENERATED) -> np.ndarray:
    """Replicate `replicate`'s resample of range(n): depends on nothing else, so it is the same
    in every evaluator (PCG64 is specified bit for bit)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, n, stream, replicate])))
    return rng.integers(0, n, size=n)


def counts(n: int, seed: int, resamples: int, stream: int = GENERATED) -> Iterator[np.ndarray]:
    """Per replicate, how often each sample is drawn (the resample as weights)."""
    for b in range(resamples):
        yield np.bincount(index_set(n, seed, b, stream), minlength=n).astype(np.float64)


def weighted_statistics(feats: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of the resample that draws sample i w[i] times: the same
    numbers as statistics(feats[index_set]) without copying the features."""
    n = w.sum()
    mu = w @ feats / n
    centred = feats - mu
    return mu, (centred * w[:, None]).T @ centred / (n - 1)


def sym_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a covariance (negative rounding eigenvalues clipped to 0)."""
    lam, vec = np.linalg.eigh(sigma)
    return (vec * np.sqrt(np.clip(lam, 0.0, None))) @ vec.T


class Reference:
    """Reference statistics with their square root, computed once and shared by replicates."""

    def __init__(self, mu: np.ndarray, sigma: np.ndarray):
        self.mu = np.asarray(mu, np.float64)
        self.sigma = np.asarray(sigma, np.float64)
        self.trace = float(np.trace(self.sigma))

    @functools.cached_property
    def root(self) -> np.ndarray:
        """sqrt(S_ref), computed on first use: the low-rank path below never needs it."""
        return sym_sqrt(self.sigma)

    def frechet(self, mu: np.ndarray, sigma: np.ndarray) -> float:
        m = self.root @ sigma @ self.root
        lam = np.linalg.eigvalsh((m + m.T) / 2.0)
        tr_root = float(np.sum(np.sqrt(np.clip(lam, 0.0, None))))
        diff = mu - self.mu
        return float(diff @ diff + np.trace(sigma) + self.trace - 2.0 * tr_root)

    def frechet_low_rank(self, feats: np.ndarray, w: np.ndarray) -> float:
        """The same FID as frechet(*weighted_statistics(feats, w)), exactly, in N x N instead of
        d x d: S = A A^T with A's columns the centred samples scaled by sqrt(w / (n - 1)), so
        R S R = (R A)(R A)^T has the nonzero eigenvalues of A^T S_ref A. Used when N < d."""
        n = w.sum()
        mu = w @ feats / n
        a = (feats - mu) * np.sqrt(w / (n - 1))[:, None]  # [N, d]: A^T
        lam = np.linalg.eigvalsh(a @ self.sigma @ a.T)
        tr_root = float(np.sum(np.sqrt(np.clip(lam, 0.0, None))))
        diff = mu - self.mu
        return float(diff @ diff + np.sum(a * a) + self.trace - 2.0 * tr_root)


def point_fid(feats: np.ndarray, ref: Reference) -> float:
    """FID of all samples against a fixed reference. With fewer samples than feature dimensions
    (a few hundred images under Inception's 2,048) the exact low-rank form: clean-fid's sqrtm of a
    2048 x 2048 product takes minutes on 2 CPU cores, this an N x N eigvalsh (tests hold the two
    equal). Otherwise clean-fid's own frechet_distance, the definition the paper's FIDs use."""
    from ladder_evaluator.metrics import fid

    feats = np.asarray(feats, np.float64)
    if len(feats) < feats.shape[1]:
        return ref.frechet_low_rank(feats, np.ones(len(feats)))
    return fid.frechet(*fid.statistics(feats), ref.mu, ref.sigma)


def fid_replicates(feats: np.ndarray, ref: Reference, seed: int, resamples: int,
                   ref_feats: np.ndarray | None = None) -> list[float]:
    """FID of each resample of the generated features; when the reference statistics were
    computed from images (`ref_feats`), the reference is resampled too (its own stream), since its
    sampling noise is part of the measurement's."""
    feats = np.asarray(feats, np.float64)
    ref_feats = None if ref_feats is None else np.asarray(ref_feats, np.float64)
    gen = counts(len(feats), seed, resamples, GENERATED)
    refs = counts(len(ref_feats), seed, resamples, REFERENCE) if ref_feats is not None else None
    small = feats.shape[1] < ONE_THREAD_BELOW_DIM
    out = []
    with threadpool_limits(1) if small else contextlib.nullcontext():
        for w in gen:
            if refs is None and len(feats) < feats.shape[1]:
                out.append(ref.frechet_low_rank(feats, w))
                continue
            r = ref if refs is None else Reference(*weighted_statistics(ref_feats, next(refs)))
            out.append(r.frechet(*weighted_statistics(feats, w)))
    return out


def mean_replicates(values: np.ndarray, seed: int, resamples: int) -> list[float]:
    """Mean of each resample of per-sample values (CLIP similarities, adherence hits)."""
    values = np.asarray(values, np.float64)
    return [float(w @ values / w.sum()) for w in counts(len(values), seed, resamples, GENERATED)]


def fid_flops(n: int, d: int, resample_reference_n: int = 0) -> float:
    """Floating-point operations of one FID replicate (see the module docstring)."""
    per = 2.0 * n * d * d + 4.0 * d**3 + 4.0 / 3.0 * d**3
    if resample_reference_n:
        per += 2.0 * resample_reference_n * d * d + 9.0 * d**3  # its covariance and eigh
    return per


# --- a measurement with its interval, as the Result fields that carry it ------------------------


def centred(replicates: list[float], value: float) -> list[float]:
    """Replicates shifted so that their mean is the point value. Resampling with replacement
    repeats samples (about 63% distinct), which shrinks the covariance's effective sample size and
    inflates FID: at 200 samples and 64 features the resamples' FIDs sit ~80% above the full-sample
    FID, entirely outside a plain percentile interval around it. The spread is right, the centre is
    not, so the interval is the spread placed around the measured value: an interval for the FID
    expected at numSamples samples, the quantity every size is compared on."""
    shift = value - sum(replicates) / len(replicates)
    return [r + shift for r in replicates]


def fid_measurement(value: float, feats, ref: Reference, seed: int, resamples: int, confidence: float,
                    ref_feats=None) -> dict:
    """FID (clean-fid's point value) with its bootstrap percentile interval and replicates."""
    reps = centred(fid_replicates(feats, ref, seed, resamples, ref_feats), float(value))
    lo, hi = uncertainty.percentile_interval(reps, confidence)
    return dict(value=float(value), ci_low=lo, ci_high=hi, stderr=uncertainty.stdev(reps),
                confidence=confidence, interval="bootstrap-centred-percentile", replicates=reps)


def mean_measurement(values, seed: int, resamples: int, confidence: float) -> dict:
    """A mean over samples (the CLIP score): normal interval, replicates for pairing."""
    values = np.asarray(values, np.float64)
    m, se, lo, hi = uncertainty.mean_interval(values.tolist(), confidence)
    return dict(value=m, ci_low=lo, ci_high=hi, stderr=se, confidence=confidence, interval="normal",
                replicates=centred(mean_replicates(values, seed, resamples), m))


def proportion_measurement(hits, seed: int, resamples: int, confidence: float) -> dict:
    """A share of hits (adherence): Wilson interval, replicates for pairing."""
    hits = np.asarray(hits, np.float64)
    n, k = len(hits), int(hits.sum())
    p = k / n
    lo, hi = uncertainty.wilson_interval(k, n, confidence)
    return dict(value=p, ci_low=lo, ci_high=hi, stderr=float(np.sqrt(p * (1 - p) / n)),
                confidence=confidence, interval="wilson",
                replicates=centred(mean_replicates(hits, seed, resamples), p))


def over_seeds(per_seed: list[dict], confidence: float) -> dict:
    """One measurement from the same grid point at several noise seeds: the mean value, the
    bootstrap of that mean (replicate b is the mean of the seeds' replicate b, the same resample
    of each seed's samples), and the seeds' own values and spread. One seed: unchanged."""
    if len(per_seed) == 1:
        return per_seed[0]
    values = [m["value"] for m in per_seed]
    value = sum(values) / len(values)
    reps = centred([sum(col) / len(col) for col in zip(*(m["replicates"] for m in per_seed), strict=True)],
                   value)
    lo, hi = uncertainty.percentile_interval(reps, confidence)
    return dict(value=value, ci_low=lo, ci_high=hi, stderr=uncertainty.stdev(reps), confidence=confidence,
                interval="bootstrap-centred-percentile", replicates=reps, seed_values=values,
                seed_spread=uncertainty.stdev(values))
