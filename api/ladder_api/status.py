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
    ci_low: float | None = Field(None, description="Lower end of the value's confidence interval.")
    ci_high: float | None = Field(None, description="Upper end of the value's confidence interval.")
    stderr: float | None = Field(
        None, description="Standard error (the bootstrap replicates' standard deviation for FID)."
    )
    confidence: float | None = Field(None, description="Confidence level of ciLow..ciHigh.")
    interval: str | None = Field(
        None, description="How the interval was made: bootstrap-centred-percentile, wilson or normal."
    )
    seed_values: list[float] | None = Field(
        None, description="The value at each noise seed (evaluation.seeds > 1); value is their mean."
    )
    seed_spread: float | None = Field(
        None, description="Standard deviation of seedValues: the between-seed spread."
    )
    replicates: list[float] | None = Field(
        None, description="The value on each shared bootstrap resample, centred on the value "
        "(kept in the results objects in storage, left out of the status): paired comparisons use "
        "them."
    )

    def in_status(self) -> Result:
        """The entry as the status carries it: without replicates, which would make a paper-scale
        status (3,168 results x 100 resamples) too large for the API server."""
        return self if self.replicates is None else self.model_copy(update={"replicates": None})


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
    fid_low: float | None = Field(None, description="Lower end of its FID's confidence interval.")
    fid_high: float | None = Field(None, description="Upper end of its FID's confidence interval.")
    ties: list[int] = Field(
        default_factory=list, description="Other widths whose best setting within the budget is not "
        "distinguishable from this one (their paired FID difference's interval holds 0): the width "
        "wins the budget only when this is empty."
    )
    win_probability: float | None = Field(
        None, description="Share of the shared bootstrap resamples in which this width has the best "
        "FID within the budget (present when every result there has replicates)."
    )


class Summary(Model):
    sizes_done: int = Field(0, description="Sizes trained and evaluated.")
    sizes_total: int = Field(0, description="Sizes in the ladder.")
    progress: str = Field("0/0", description="sizes done / total, for the printer column.")
    best_fid: float | None = Field(None, description="Lowest FID measured so far.")
    best_width: int | None = Field(None, description="Width that reached bestFid.")
    fid_metric: str | None = Field(None, description="Which FID the summary ranks by.")
    confidence: float | None = Field(None, description="Confidence level of intervals and ties.")
    predictions: list[str] = Field(
        default_factory=list, description="PREDICTED, not measured: per size still training, the "
        "budgets it is predicted to win and how likely (ladder_api.predict; one line per size)."
    )
    frontier: list[FrontierPoint] = Field(
        default_factory=list, description="Best size per sampling budget."
    )
    pareto: list[FrontierPoint] = Field(
        default_factory=list, description="Pareto front of sampling cost against FID."
    )


class CostEstimate(Model):
    """What the whole study costs by ladder_api.estimate, and how much of it is done."""

    train_chip_hours: float = Field(..., description="Chip-hours of training every size.")
    eval_chip_hours: float = Field(..., description="Chip-hours of evaluating every size's grid.")
    chip_hours: float = Field(..., description="Training and evaluation together.")
    spent_chip_hours: float = Field(
        ..., description="The estimate's chip-hours of the work done so far (training steps "
        "reached, sizes evaluated), at the same utilisation: progress in chip-hours, not a metering."
    )
    storage_bytes: int = Field(..., description="Training data and the checkpoints the runs keep.")
    train_mfu: float = Field(..., description="Training utilisation the estimate assumes.")
    eval_mfu: float = Field(..., description="Evaluation utilisation the estimate assumes.")
    price_per_chip_hour: float | None = Field(None, description="Price the money figures assume.")
    cost: float | None = Field(None, description="chipHours x pricePerChipHour.")
    spent_cost: float | None = Field(None, description="spentChipHours x pricePerChipHour.")


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
    cost: CostEstimate | None = Field(
        None, description="The study's estimated chip-hours, storage and money, and what is spent."
    )
