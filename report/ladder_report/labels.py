"""What each metric measures, in words the report prints beside every number.

An offline FID (features of a small classifier trained on the dataset) is a different quantity
from the Inception FID papers report; the label makes that impossible to miss.
"""

from __future__ import annotations

from dataclasses import dataclass

from ladder_api.grid import ADHERENCE, CLIP_SCORE, fid_features_of, fid_metric
from ladder_api.spec import FidFeatures


@dataclass(frozen=True)
class MetricLabel:
    short: str
    long: str
    lower_is_better: bool
    percent: bool = False


KNOWN = {
    fid_metric(FidFeatures.inception): MetricLabel(
        "FID (Inception)",
        "Fréchet Inception Distance on Inception-v3 pool features (clean-fid). Comparable to "
        "published FIDs only with the same reference set and sample count.",
        True,
    ),
    fid_metric(FidFeatures.digits_classifier): MetricLabel(
        "FID (digits-classifier features)",
        "Fréchet distance between generated and held-out real digits, computed on the features of a "
        "small digits classifier trained offline on the dataset (clean-fid's custom feature path). "
        "Not comparable to Inception FID or to any published number; lower is better.",
        True,
    ),
    CLIP_SCORE: MetricLabel(
        "CLIP score",
        "Cosine similarity of open_clip image and prompt embeddings (higher is better).",
        False,
    ),
    ADHERENCE: MetricLabel(
        "Prompt adherence",
        "Fraction of generated images that a digits classifier (trained offline on the dataset) "
        "labels as the prompted digit. Chance is 10% (ten digits); higher is better.",
        False,
        percent=True,
    ),
}


def label(metric: str) -> MetricLabel:
    if metric in KNOWN:
        return KNOWN[metric]
    features = fid_features_of(metric)
    if features:
        return MetricLabel(f"FID ({features} features)", f"Fréchet distance on {features} features "
                           "(not comparable to Inception FID).", True)
    return MetricLabel(metric, f"{metric} (as recorded by the evaluator)", False)


def format_value(metric: str, value: float) -> str:
    lab = label(metric)
    return f"{100 * value:.1f}%" if lab.percent else f"{value:.3f}"


def format_interval(r) -> str:
    """A result's value with its confidence interval when it has one (older results have none)."""
    if r.ci_low is None or r.ci_high is None:
        return format_value(r.metric, r.value)
    lo, hi = format_value(r.metric, r.ci_low), format_value(r.metric, r.ci_high)
    return f"{format_value(r.metric, r.value)} [{lo}, {hi}]"
