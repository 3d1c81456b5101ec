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
from ladder_api.limits import MAX_GRID_LIST, MAX_POINTS, MAX_TIE_SETTINGS, MAX_VIEWS, MAX_WIDTHS


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


_UNCERTAINTY = ("ciLow", "ciHigh", "stderr", "seedValues", "seedSpread", "replicates", "ci_low",
                "ci_high", "seed_values", "seed_spread")  # wire and field names (either is accepted)


def _finite(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    return True


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
        default_factory=dict,
        description="Exact settings used: autoencoder, features, eta, initialization and EMA "
        "schemes, sampling dtype, text encoder, CLIP model/tag and weights hash, the reference "
        "prompts' and statistics' hashes.",
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
        "(in the results of record in storage): paired comparisons use them."
    )

    @model_validator(mode="before")
    @classmethod
    def _non_finite_is_a_failure(cls, data: Any) -> Any:
        """A NaN or infinite value (a diverged model, a singular covariance) becomes a failed
        measurement with its reason, and has no uncertainty: never a number that JSON, the API
        server and the frontier cannot take. A finite value whose uncertainty is not (a resample
        whose covariance was singular) keeps the value without it: it reads "no interval" and is
        compared unpaired, never with a NaN. Results files written before this rule are read the
        same way."""
        if not isinstance(data, dict):
            return data
        value = data.get("value")
        cleared = {k: None for k in _UNCERTAINTY if k in data}
        if isinstance(value, float) and not math.isfinite(value):
            reason = f"the metric came out {value}, not a finite number"
            return {**data, **cleared, "value": None, "error": data.get("error") or reason}
        if not all(_finite(data[k]) for k in cleared):
            return {**data, **cleared}
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


class TieSetting(Model):
    """A setting (of any size, the winner's included) not distinguishable from a frontier point's."""

    width: int = Field(..., description="Base channel count c.")
    sampler: str = Field(..., description="Sampler.")
    steps: int = Field(..., description="Sampling steps.")
    guidance: float = Field(..., description="Guidance scale.")
    fid: float = Field(..., description="Its FID.")


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
        default_factory=list, max_length=MAX_WIDTHS,
        description="Other widths whose best setting within the budget is not distinguishable from "
        "this one (their paired FID difference's interval holds 0): the width wins the budget only "
        "when this is empty."
    )
    win_probability: float | None = Field(
        None, description="Share of the shared bootstrap resamples in which this width has the best "
        "FID within the budget (present when every result there has replicates)."
    )
    tie_settings: list[TieSetting] = Field(
        default_factory=list, max_length=MAX_TIE_SETTINGS,
        description="Settings within the budget (sizes, samplers, steps, guidance; the winner's own "
        "size included) whose FID is not distinguishable from this one's (paired difference's "
        f"interval holds 0), best first: in the status at most {MAX_TIE_SETTINGS}, all in the report.",
    )
    tie_settings_total: int = Field(
        0, ge=0, description="How many settings are tied with this one (tieSettings lists the best)."
    )


class FrontierView(Model):
    """One sampler's frontier and Pareto front (the paper's Figure 11 per sampler), or the pooled
    one over every sampler (sampler `pooled`)."""

    sampler: str = Field(..., description="The sampler, or pooled (all samplers together).")
    frontier: list[FrontierPoint] = Field(
        default_factory=list, max_length=MAX_POINTS,
        description=f"Best size per budget, at most {MAX_POINTS} points (thinned like summary.frontier).",
    )
    pareto: list[FrontierPoint] = Field(
        default_factory=list, max_length=MAX_POINTS,
        description=f"Pareto front, at most {MAX_POINTS} points (thinned like summary.pareto).",
    )


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
    confidence: float | None = Field(None, description="Confidence level of intervals and ties.")
    predictions: list[str] = Field(
        default_factory=list, max_length=MAX_WIDTHS,
        description="PREDICTED, not measured: per size still training, the budgets it is predicted "
        "to win and how likely (ladder_api.predict; one line per size)."
    )
    frontier_sampler: str | None = Field(
        None, description="Which view frontier, pareto and bestFid are of: a sampler (ddim, the "
        "paper's headline, by default) or pooled (every sampler together); see "
        "evaluation.frontierSamplers."
    )
    best_of_guidance: list[float] = Field(
        default_factory=list, max_length=MAX_GRID_LIST,
        description="Guidance scales the frontier chose from (evaluation.bestOfGuidance).",
    )
    frontier: list[FrontierPoint] = Field(
        default_factory=list, max_length=MAX_POINTS,
        description="Best size per sampling budget (frontierSampler's view): one point per budget "
        "at which the decision changes (it holds until the next point's budget); at most "
        f"{MAX_POINTS} points (ladder_api.limits.MAX_POINTS: beyond, evenly spaced by rank, cheapest "
        "and best kept)."
    )
    pareto: list[FrontierPoint] = Field(
        default_factory=list, max_length=MAX_POINTS,
        description="Pareto front of sampling cost against FID (frontierSampler's view), by "
        f"increasing cost; at most {MAX_POINTS} points, thinned like the frontier (`ladder report` "
        "has the whole front)."
    )
    views: list[FrontierView] = Field(
        default_factory=list, max_length=MAX_VIEWS,
        description="The frontier of each of evaluation.frontierSamplers, the headline first.",
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
    cost: CostEstimate | None = Field(
        None, description="The study's estimated chip-hours, storage and money, and what is spent."
    )
