"""Which measurements an evaluation of one run is expected to record.

The ids are ladder_api.status.result_id over the spec's grid (checkpoints x samplers x steps x
guidance x metrics), so the runner can tell a finished evaluation from a partial one without
starting the evaluator, and show evaluation progress as recorded / expected.
"""

from __future__ import annotations

from collections.abc import Iterable

from ladder_api.plan import RunConfig
from ladder_api.spec import EvaluationSpec, MetricName
from ladder_api.status import result_id


def metric_keys(evaluation: EvaluationSpec) -> list[str]:
    """The Result.metric strings the evaluator writes for the spec's metric list (FID carries the
    features it was computed on, so offline FID never passes for Inception FID)."""
    keys = []
    for m in evaluation.metrics:
        if m is MetricName.fid:
            keys.append(f"fid-{evaluation.fid_features.value}")
        elif m is MetricName.clip:
            keys.append("clip-score")
        else:
            keys.append(m.value)
    return keys


def checkpoint_steps(run: RunConfig, available: Iterable[int]) -> list[int]:
    """The checkpoint steps the evaluation covers: the final step, every kept one, or a list."""
    sel = run.evaluation.checkpoints
    if sel == "final":
        return [run.training.steps]
    if sel == "all":
        return sorted(set(available))
    return sorted(set(sel))


def expected_ids(run: RunConfig, available_checkpoints: Iterable[int]) -> set[str]:
    ev = run.evaluation
    return {
        result_id(run.width, step, sampler.value, steps, guidance, metric)
        for step in checkpoint_steps(run, available_checkpoints)
        for sampler in ev.samplers
        for steps in ev.steps
        for guidance in ev.guidance_scales
        for metric in metric_keys(ev)
    }
