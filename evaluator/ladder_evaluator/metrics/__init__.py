"""Metrics and their names. A result's metric name says which features it used, so an offline
number (FID on a digits classifier's features) is never read as an Inception FID.

torch, clean-fid and open_clip are imported only inside the modules that need them.
"""

from __future__ import annotations

from ladder_api.spec import FidFeatures, MetricName

CLIP_SCORE = "clip-score"
ADHERENCE = "adherence"


def fid_name(features: FidFeatures | str) -> str:
    """fid-inception (comparable to published numbers) or fid-digits-classifier (offline)."""
    return f"fid-{FidFeatures(features).value}"


def result_metric(metric: MetricName | str, fid_features: FidFeatures | str) -> str:
    """The Result.metric string a spec metric is recorded under."""
    m = MetricName(metric)
    if m is MetricName.fid:
        return fid_name(fid_features)
    if m is MetricName.clip:
        return CLIP_SCORE
    return ADHERENCE
