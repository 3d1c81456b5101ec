"""The evaluation grid: what one run's evaluation measures, defined once for every component.

The evaluator iterates it, `ladder run` counts progress and decides what to skip by it, the
operator hashes it to notice an extended grid, and the report and the frontier read the metric
names it writes. When these disagreed, a size could be evaluated on one checkpoint and counted on
another; now they cannot.

A measurement is (checkpoint step, grid point, metric). A grid point is a small frozen value
(sampler, sampling steps, guidance scale), so settings that later belong to a point (per-sampler
options, step counts derived from a budget) are added to it rather than threaded beside it.

Checkpoint selection (`evaluation.checkpoints`):
- "final" is `training.steps`, not the newest checkpoint present. The trainer always saves its
  last step (whatever the interval) and checkpoint.keep keeps the newest, so a finished run has
  it; the newest checkpoint of a run that stopped early is a half-trained model, and scoring it
  as "final" would record results under a step no other component expects (the runner would
  count the size as never evaluated, the frontier would mix it with finished sizes). So an
  evaluation before that checkpoint exists is a user error naming the step.
- "all" is every checkpoint of this run present now (up to training.steps): with checkpoint.keep
  that is the newest `keep`, the final one among them once training is done.
- a list is exactly those steps, each of which must exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ladder_api.errors import UserError
from ladder_api.plan import short_hash
from ladder_api.spec import EvaluationSpec, FidFeatures, MetricName, SamplerName
from ladder_api.status import result_id

if TYPE_CHECKING:
    from ladder_api.plan import RunConfig

# --- metric names -------------------------------------------------------------------------------

FID_PREFIX = "fid-"
CLIP_SCORE = "clip-score"
ADHERENCE = "adherence"


def fid_metric(features: FidFeatures | str) -> str:
    """fid-inception (comparable to published numbers) or fid-digits-classifier (offline): the
    name carries the features, so an offline FID is never read as an Inception FID."""
    return f"{FID_PREFIX}{FidFeatures(features).value}"


def metric_name(metric: MetricName | str, fid_features: FidFeatures | str) -> str:
    """The Result.metric string a spec metric is recorded under."""
    m = MetricName(metric)
    if m is MetricName.fid:
        return fid_metric(fid_features)
    if m is MetricName.clip:
        return CLIP_SCORE
    return ADHERENCE


def metric_names(evaluation: EvaluationSpec) -> list[str]:
    """The Result.metric strings of the spec's metrics, in the spec's order."""
    return [metric_name(m, evaluation.fid_features) for m in evaluation.metrics]


def fid_features_of(metric: str) -> str | None:
    """The features an FID metric name was computed on (None for a metric that is not FID)."""
    return metric[len(FID_PREFIX):] if metric.startswith(FID_PREFIX) else None


# --- grid points --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridPoint:
    """One sampling setting; every checkpoint is scored at every point with every metric."""

    sampler: SamplerName
    steps: int
    guidance: float

    @property
    def label(self) -> str:
        return f"{self.sampler} n={self.steps} g={self.guidance:g}"

    def result_id(self, width: int, checkpoint_step: int, metric: str) -> str:
        return result_id(width, checkpoint_step, self.sampler, self.steps, self.guidance, metric)


def grid_points(evaluation: EvaluationSpec) -> list[GridPoint]:
    """samplers x steps x guidance scales, in the spec's order."""
    return [
        GridPoint(SamplerName(s), int(n), float(g))
        for s in evaluation.samplers for n in evaluation.steps for g in evaluation.guidance_scales
    ]


# --- checkpoints --------------------------------------------------------------------------------


def planned_checkpoints(
    evaluation: EvaluationSpec, training_steps: int, available: Iterable[int]
) -> list[int]:
    """The checkpoint steps the evaluation covers once training is done, given those present now
    (see the module docstring). Exact once training is done; before, "all" counts the final step
    beside those present."""
    sel = evaluation.checkpoints
    if sel == "final":
        return [training_steps]
    if sel == "all":
        return sorted({s for s in available if s <= training_steps} | {training_steps})
    return sorted(set(sel))


def select_checkpoints(
    evaluation: EvaluationSpec, training_steps: int, available: Iterable[int], where: str
) -> list[int]:
    """The checkpoint steps to evaluate now, every one present in `where`, or a UserError that
    names what is missing and what to do."""
    have = sorted(set(available))
    sel = evaluation.checkpoints
    if sel == "all":
        chosen = [s for s in have if s <= training_steps]
        if not chosen:
            raise UserError(f"no checkpoint found at {where}: train this size first")
        return chosen
    want = planned_checkpoints(evaluation, training_steps, have)
    missing = [s for s in want if s not in have]
    if missing and sel == "final":
        newest = f"newest: step {have[-1]}" if have else "no checkpoint yet"
        raise UserError(
            f"evaluation.checkpoints is final, the checkpoint of training.steps = {training_steps}, "
            f"which is not in {where} ({newest}): finish training this size first (it resumes from "
            "its newest checkpoint), or list the steps to score in evaluation.checkpoints"
        )
    if missing:
        raise UserError(
            f"evaluation.checkpoints asks for steps {missing}, not in {where}; available: {have or 'none'}"
        )
    return want


# --- what an evaluation records -----------------------------------------------------------------


def expected_ids(run: RunConfig, available: Iterable[int]) -> set[str]:
    """The result ids the evaluation of `run` records over its planned checkpoints: recorded ids
    against these tell a finished evaluation from a partial one without starting the evaluator."""
    ev = run.evaluation
    names = metric_names(ev)
    return {
        point.result_id(run.width, step, name)
        for step in planned_checkpoints(ev, run.training.steps, available)
        for point in grid_points(ev)
        for name in names
    }


# Evaluation fields added after the first release, with the value that reproduces what Ladder did
# before them (wire name -> legacy value): at that value a field is left out of the hash, so an
# upgrade does not re-run finished evaluations. Add one line per new field.
EVALUATION_LEGACY: dict[str, object] = {
    # one noise seed is what Ladder did before `seeds`
    "seeds": 1,
    # results recorded before intervals keep their values (the evaluator skips recorded ids
    # anyway); at the default the hash is unchanged, so an upgrade re-runs nothing
    "bootstrap": {"resamples": 100, "confidence": 0.95},
}


def evaluation_hash(evaluation: EvaluationSpec, legacy: dict[str, object] = EVALUATION_LEGACY) -> str:
    """Fingerprint of the evaluation settings. The operator records it when a size's evaluation
    completes and evaluates again when it changes (an extended grid); the evaluator then skips the
    ids already recorded. Stable across versions (see EVALUATION_LEGACY): the operator compares it
    with hashes that earlier versions recorded in its state annotation."""
    wire = evaluation.to_wire(exclude_none=False)
    kept = {k: v for k, v in wire.items() if k not in legacy or legacy[k] != v}
    return short_hash(kept, 12)
