"""Intervals and paired comparisons on recorded measurements: pure Python, no numpy.

The operator summarizes results into the status and must not carry numpy or torch, so the
decision side of the bootstrap lives here and works on plain lists of floats. The measurement side
(resampling features into replicate FIDs) is in ladder_evaluator.metrics.bootstrap, where the
features exist.

Pairing: every evaluator of one experiment draws the same bootstrap index sets (seeded by
evaluation.seed and the sample count), and sample i starts from the same noise and prompt at every
grid point, so replicate b of two results is the same resample of the same prompts. The difference
of two results' replicates, b by b, is then the bootstrap of their difference, far tighter than two
separate intervals compared side by side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist


def z_value(confidence: float) -> float:
    """Two-sided normal quantile: 1.96 at 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of sorted values (numpy's default rule)."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def percentile_interval(replicates: Sequence[float], confidence: float) -> tuple[float, float]:
    """The bootstrap percentile interval: the central `confidence` share of the replicates."""
    z_value(confidence)  # validates
    s = sorted(replicates)
    tail = (1.0 - confidence) / 2.0
    return quantile(s, tail), quantile(s, 1.0 - tail)


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1); 0 for fewer than two values."""
    n = len(values)
    if n < 2:
        return 0.0
    m = sum(values) / n
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


def wilson_interval(hits: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion: unlike p +- z se it stays inside [0, 1] and keeps
    its coverage at 0 or n hits, which a good classifier's adherence often is."""
    if n < 1 or not 0 <= hits <= n:
        raise ValueError(f"need 0 <= hits <= n and n >= 1, got {hits}/{n}")
    z = z_value(confidence)
    p = hits / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float], confidence: float) -> tuple[float, float, float, float]:
    """(mean, standard error, low, high) by the normal approximation: the CLIP score is a mean over
    thousands of samples, where the central limit theorem holds well."""
    n = len(values)
    if n < 1:
        raise ValueError("mean of no values")
    m = sum(values) / n
    se = stdev(values) / math.sqrt(n)
    z = z_value(confidence)
    return m, se, m - z * se, m + z * se


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float) -> tuple[float, float]:
    """Percentile interval of a - b over paired replicates (same resample b by b)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired replicates must have the same non-zero length, got {len(a)} and {len(b)}")
    return percentile_interval([x - y for x, y in zip(a, b, strict=True)], confidence)


def unpaired_difference(
    a: tuple[float, float], b: tuple[float, float], confidence: float
) -> tuple[float, float]:
    """Normal interval of a - b from (value, standard error) pairs, for results recorded without
    replicates: conservative (it ignores the positive correlation of common noise)."""
    d = a[0] - b[0]
    half = z_value(confidence) * math.hypot(a[1], b[1])
    return d - half, d + half


def elementwise_min(a: Sequence[float], b: Sequence[float]) -> list[float]:
    return [x if x <= y else y for x, y in zip(a, b, strict=True)]


def win_shares(best: dict[object, Sequence[float]]) -> dict:
    """Share of replicates in which each key has the lowest value (`best` maps a key to its
    replicate vector); ties within a replicate split the win."""
    lengths = {len(r) for r in best.values()}
    if len(lengths) != 1:
        raise ValueError(f"replicates of unequal lengths {sorted(lengths)}")
    (n,) = lengths
    wins = dict.fromkeys(best, 0.0)
    keys = list(best)
    for i in range(n):
        top = min(best[k][i] for k in keys)
        leaders = [k for k in keys if best[k][i] == top]
        for k in leaders:
            wins[k] += 1.0 / len(leaders)
    return {k: w / n for k, w in wins.items()}


def win_probability(
    candidates: dict[object, Sequence[Sequence[float]]], lower_is_better: bool = True
) -> dict:
    """Share of replicates in which each key holds the best value, re-choosing each key's best
    setting inside every replicate: candidates maps a key (a size) to its settings' replicate
    lists, all of one length B. Ties within a replicate split the win."""
    sign = 1.0 if lower_is_better else -1.0
    best = {}
    for k, settings in candidates.items():
        vec = [sign * v for v in settings[0]]
        for r in settings[1:]:
            vec = elementwise_min(vec, [sign * v for v in r])
        best[k] = vec
    return win_shares(best)
