"""The ScalingExperiment status: an explicit schema, written by several writers at once.

`results` is a list-map keyed by `id` (a deterministic string built from what identifies one
measurement: width, checkpoint step, sampler, steps, guidance, metric). One string key is used
rather than six because server-side apply matches float keys (guidance) poorly; the components
are kept as fields beside it. Each evaluator pod applies its own entries with its own field
manager, so concurrent writers never erase each other's entries. `sizes` is a list-map keyed by
`width` for the same reason (the trainer and the operator both write it).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from ladder_api.base import Model


class ExperimentPhase(StrEnum):
    pending = "Pending"
    preparing = "Preparing"
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
    value: float = Field(..., description="The measured value.")
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
    frontier: list[FrontierPoint] = Field(
        default_factory=list, description="Best size per sampling budget."
    )
    pareto: list[FrontierPoint] = Field(
        default_factory=list, description="Pareto front of sampling cost against FID."
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
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Progressing, Degraded, Suspended (keyed by type)."
    )
    sizes: list[SizeStatus] = Field(
        default_factory=list, description="One entry per width (keyed by width)."
    )
    results: list[Result] = Field(
        default_factory=list, description="Every measurement (keyed by id; written by server-side apply)."
    )
    summary: Summary = Field(default_factory=Summary, description="Progress and the frontier.")
