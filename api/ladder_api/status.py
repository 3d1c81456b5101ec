"""The ScalingExperiment status: an explicit schema, written by several writers at once.

The status is a dashboard, not a database. The results of record (one `Result` per measurement:
3,168 for the paper's grid, five times that with `checkpoints: all`) live in the experiment's
storage (ladder_api.artifacts: write-once objects under each size's results/ folder); the status
holds a bounded digest of them (ladder_api.digest): per size, how many measurements are recorded
out of how many the grid asks for, and the summary (best FID, the frontier, the Pareto front).

`sizes` is a list-map keyed by `width`: the operator (phase, JobSets, measurements), the trainer
(step, loss, checkpoint) and the evaluator (its progress report) each apply their own fields of a
size's entry with their own field manager, so concurrent writers never erase each other's.

Models stay open to additions (confidence intervals, more metrics): every field has a default or
is optional, so a reader of a newer status or results file ignores nothing it needs and an older
reader is not broken by what it does not know (the operator reads the status leniently).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from ladder_api.base import Model
from ladder_api.limits import MAX_POINTS


class ExperimentPhase(StrEnum):
    pending = "Pending"
    running = "Running"
    succeeded = "Succeeded"
    failed = "Failed"
    suspended = "Suspended"
    invalid = "Invalid"


class SizePhase(StrEnum):
    pending = "Pending"
    queued = "Queued"
    training = "Training"
    evaluating = "Evaluating"
    succeeded = "Succeeded"
    failed = "Failed"
    suspended = "Suspended"


class Condition(Model):
    type: str = Field(..., description="Ready, Progressing, Degraded or Suspended.")
    status: str = Field(..., description="True, False or Unknown.")
    reason: str = Field("", description="CamelCase reason.")
    message: str = Field("", description="Human-readable detail.")
    last_transition_time: str | None = Field(None, description="RFC 3339 time.")
    observed_generation: int | None = Field(None, description="Generation the condition describes.")


class Measurements(Model):
    """A size's measurements of record, counted from storage (bounded: four numbers)."""

    recorded: int = Field(0, ge=0, description="Measurements of the current grid recorded in storage.")
    expected: int | None = Field(
        None, ge=0, description="Measurements the current grid asks for (checkpoints x samplers x "
        "steps x guidance scales x metrics)."
    )
    failed: int = Field(
        0, ge=0, description="Of the recorded, those that failed (e.g. a non-finite value): listed by "
        "`ladder report`, never ranked."
    )
    best_fid: float | None = Field(
        None, description="This size's lowest FID (the summary's metric, newest checkpoint)."
    )


class EvaluatorProgress(Model):
    """What an evaluator pod reports after writing results to storage: small on purpose (the
    results themselves are in storage); each report wakes the operator, which then reads the new
    result objects."""

    recorded: int = Field(
        0, ge=0, description="Measurements of this size recorded, as the evaluator knows them."
    )
    written_at: str | None = Field(None, description="RFC 3339 time of its last results write.")


class SizeStatus(Model):
    width: int = Field(..., description="Base channel count c (the list-map key).")
    phase: SizePhase = Field(SizePhase.pending, description="Where this size is in its life cycle.")
    jobset: str | None = Field(None, description="Training JobSet name.")
    eval_jobset: str | None = Field(None, description="Evaluation JobSet name.")
    restarts: int = Field(0, ge=0, description="JobSet restarts so far.")
    step: int | None = Field(None, description="Latest training step reported by the trainer.")
    total_steps: int | None = Field(None, description="Steps the run trains for.")
    loss: float | None = Field(None, description="Latest training loss.")
    checkpoint_step: int | None = Field(None, description="Newest complete checkpoint's step.")
    checkpoint_uri: str | None = Field(None, description="Newest complete checkpoint's URI.")
    message: str | None = Field(None, description="Why the size is in this phase.")
    measurements: Measurements | None = Field(
        None, description="This size's measurements of record (in storage), counted by the operator."
    )
    evaluator: EvaluatorProgress | None = Field(
        None, description="The evaluator's own progress report (its writes wake the operator up)."
    )


class Result(Model):
    """One measurement: one metric of one checkpoint under one sampling setting."""

    id: str = Field(..., description="Deterministic key: see result_id().")
    width: int = Field(..., description="Base channel count c of the model.")
    checkpoint_step: int = Field(..., description="Training step of the evaluated checkpoint.")
    sampler: str = Field(..., description="Sampler name (ddim, ddpm, dpmpp_2m).")
    steps: int = Field(..., description="Sampling steps.")
    guidance: float = Field(..., description="Classifier-free guidance scale.")
    metric: str = Field(
        ..., description="Metric with its features, e.g. fid-inception, fid-digits-classifier, "
        "clip-score, adherence."
    )
    value: float | None = Field(
        None, description="The measured value (always finite); absent when the measurement failed."
    )
    error: str | None = Field(
        None, description="Why the measurement failed (e.g. the metric came out NaN): recorded so "
        "it is not retried forever, listed by the report, ignored by the frontier."
    )
    num_samples: int = Field(..., description="Samples the metric was computed on.")
    gflops_per_forward: float = Field(..., description="Analytic GFLOPs of one U-Net forward.")
    sampling_cost: float = Field(
        ..., description="The paper's cost: normalized model cost x sampling steps."
    )
    sampling_cost_with_guidance: float = Field(
        ..., description="The same, counting classifier-free guidance's second forward pass."
    )
    settings: dict[str, str] = Field(
        default_factory=dict, description="Exact settings used (autoencoder, features, eta...)."
    )

    @model_validator(mode="before")
    @classmethod
    def _non_finite_is_a_failure(cls, data: Any) -> Any:
        """A NaN or infinite value (a diverged model, a singular covariance) becomes a failed
        measurement with its reason: never a number that JSON, the API server and the frontier
        cannot take. Results files written before this rule are read the same way."""
        if isinstance(data, dict):
            value = data.get("value")
            if isinstance(value, float) and not math.isfinite(value):
                reason = f"the metric came out {value}, not a finite number"
                return {**data, "value": None, "error": data.get("error") or reason}
        return data

    @model_validator(mode="after")
    def _value_or_error(self) -> Result:
        if (self.value is None) == (self.error is None):
            raise ValueError("a result has either a value or an error (a failed measurement), not both")
        return self

    @property
    def failed(self) -> bool:
        return self.error is not None


def result_id(
    width: int, checkpoint_step: int, sampler: str, steps: int, guidance: float, metric: str
) -> str:
    """The list-map key of one measurement. Stable across runs so re-evaluation updates in place."""
    return f"c{width}-s{checkpoint_step}-{sampler}-n{steps}-g{guidance:g}-{metric}"


class FrontierPoint(Model):
    budget: float = Field(..., description="Sampling-cost budget (normalized cost x steps).")
    width: int = Field(..., description="Base channel count c of the best model at this budget.")
    sampler: str = Field(..., description="Sampler of the best setting.")
    steps: int = Field(..., description="Sampling steps of the best setting.")
    guidance: float = Field(..., description="Guidance scale of the best setting.")
    fid: float = Field(..., description="Its FID.")
    cost: float = Field(..., description="Its sampling cost (at most the budget).")


class Summary(Model):
    sizes_done: int = Field(0, description="Sizes trained and evaluated.")
    sizes_total: int = Field(0, description="Sizes in the ladder.")
    progress: str = Field("0/0", description="sizes done / total, for the printer column.")
    best_fid: float | None = Field(None, description="Lowest FID measured so far.")
    best_width: int | None = Field(None, description="Width that reached bestFid.")
    fid_metric: str | None = Field(None, description="Which FID the summary ranks by.")
    measured: str | None = Field(
        None, description="Measurements recorded / expected over all sizes, for the printer column."
    )
    frontier: list[FrontierPoint] = Field(
        default_factory=list, max_length=MAX_POINTS,
        description="Best size per sampling budget: one point per budget at which the winner "
        "changes (it holds until the next point's budget); at most 64 points (ladder_api.limits."
        "MAX_POINTS: beyond, evenly spaced by rank, cheapest and best kept)."
    )
    pareto: list[FrontierPoint] = Field(
        default_factory=list, max_length=MAX_POINTS,
        description="Pareto front of sampling cost against FID, by increasing cost; at most 64 "
        "points, thinned like the frontier (`ladder report` has the whole front)."
    )


class ScalingExperimentStatus(Model):
    phase: ExperimentPhase = Field(ExperimentPhase.pending, description="Phase of the experiment.")
    message: str | None = Field(None, description="Why the experiment is in this phase.")
    observed_generation: int | None = Field(
        None, description="metadata.generation of the spec this status describes."
    )
    spec_hash: str | None = Field(None, description="Hash of the spec the status describes.")
    code_version: str | None = Field(None, description="Ladder version that wrote this status.")
    images: dict[str, str] = Field(default_factory=dict, description="Images actually used.")
    storage_root: str | None = Field(
        None, description="Where the experiment's files are (<outputUri>/<name>): checkpoints, metrics, "
        "samples and the results of record; `ladder report <storageRoot>` reads them."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Progressing, Degraded, Suspended (keyed by type)."
    )
    sizes: list[SizeStatus] = Field(
        default_factory=list, description="One entry per width (keyed by width)."
    )
    summary: Summary = Field(
        default_factory=Summary, description="Progress and the frontier, from all results of record "
        "(they are in storage: `ladder report` reads them)."
    )
