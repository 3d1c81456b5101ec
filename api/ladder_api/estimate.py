"""The study's cost before it runs: chip-hours, wall-clock hours, storage and money per size.

A scaling study at the paper's scale is thousands of TPU chip-days; the figure should be known
before `kubectl apply`, not read off the bill. Pure (no JAX, no I/O): `ladder plan --estimate`,
`ladder validate` and the operator's status all call `estimate(plan)`, so they agree.

Training: a step costs 3 x the analytic forward FLOPs per example (forward, and a backward of
twice the forward: the usual 6 N D, with the real per-forward count of ladder_api.ladder instead
of 2 N per token), steps x global batch examples. Chip-hours = FLOPs / (peak bf16 FLOP/s of the
slice's chip x MFU); wall-clock = chip-hours / the chips of the size's slice(s).

Evaluation, per checkpoint the grid scores (grid.planned_checkpoints over the checkpoints a
finished run keeps), per grid point: numSamples rounded up to whole batches (the evaluator runs
full batches and truncates the last) x sampling steps x U-Net forwards per step (2 with
classifier-free guidance, frontier.forwards_per_step), then per image the autoencoder's decoder
and the feature networks of the metrics (ladder_api.frozen_cost: Inception-v3 for Inception FID,
CLIP's image tower for CLIP score; the digits classifier and adherence are a few MFLOPs and left
out, as are CLIP's text tower and the reference statistics, computed once). Wall-clock assumes
the evaluation keeps every chip of its slice busy.

Storage: the training data (latents and text embeddings, float16 as ladder-latents writes them)
and the checkpoints a finished run keeps (parameters, EMA and Adam's two moments in paramDtype).

The utilisation figures are assumptions, overridable: training's default is the real train
step's measured utilisation (bench/trainer.md, 35.6% at c = 128; no accelerator measurement yet),
evaluation's the sampling loop's (bench/evaluator.md: 22 GFLOP/s of a ~400 GFLOP/s CPU, ~5%).
Peaks are bf16: with computeDtype float32 a TPU runs slower than the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ladder_api import frozen_cost, grid
from ladder_api.frontier import forwards_per_step
from ladder_api.memory import DTYPE_BYTES
from ladder_api.spec import EvaluationSpec, FidFeatures, MetricName, TrainingSpec
from ladder_api.status import CostEstimate, SizePhase, SizeStatus
from ladder_api.tpu import SLICES

if TYPE_CHECKING:  # pragma: no cover
    from ladder_api.plan import Plan, RunConfig
    from ladder_api.spec import SliceRequest

# Utilisation defaults, from bench/ (2026-12-02, the 2-core VM with nothing else running, against a
# matmul timed in the same process; no accelerator was lent): the train step at c = 128 in fp32
# 45.5% (bench/trainer.md), the sampling loop at c = 64, 32x32x4, batch 64 with guidance 43.8%
# (bench/evaluator.md). Rounded down; the chart's defaults.costEstimate equals them (a chart test).
DEFAULT_TRAIN_MFU = 0.45
DEFAULT_EVAL_MFU = 0.4
TRAIN_FLOPS_PER_FORWARD = 3.0  # forward + backward (twice the forward)
DATA_BYTES = 2  # float16 latents and embeddings in the training shards
SECONDS_PER_HOUR = 3600.0


def train_flops_per_example(gflops_per_forward: float) -> float:
    """FLOPs of one training example: forward and backward of the U-Net."""
    return TRAIN_FLOPS_PER_FORWARD * gflops_per_forward * 1e9


@dataclass(frozen=True)
class Assumptions:
    """What the estimate cannot know from the spec."""

    train_mfu: float = DEFAULT_TRAIN_MFU
    eval_mfu: float = DEFAULT_EVAL_MFU
    price_per_chip_hour: float | None = None
    dataset_examples: int | None = None  # None: one pass over what training reads

    def __post_init__(self) -> None:
        for name in ("train_mfu", "eval_mfu"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        if self.price_per_chip_hour is not None and self.price_per_chip_hour < 0:
            raise ValueError(f"price_per_chip_hour must be >= 0, got {self.price_per_chip_hour}")
        if self.dataset_examples is not None and self.dataset_examples < 1:
            raise ValueError(f"dataset_examples must be positive, got {self.dataset_examples}")


@dataclass(frozen=True)
class EvalFlops:
    """One checkpoint's evaluation over the whole grid."""

    points: int
    images: int  # generated (whole batches)
    unet: float
    decoder: float
    features: float

    @property
    def total(self) -> float:
        return self.unet + self.decoder + self.features


@dataclass(frozen=True)
class SizeEstimate:
    width: int
    params: int
    slice: str
    chips: int
    eval_slice: str
    eval_chips: int
    steps: int
    train_flops: float
    train_chip_hours: float
    checkpoints_evaluated: int
    eval: EvalFlops  # per checkpoint
    eval_chip_hours: float
    checkpoint_bytes: int
    checkpoints_kept: int

    @property
    def train_hours(self) -> float:
        """Wall-clock hours of training on its slice(s)."""
        return self.train_chip_hours / self.chips

    @property
    def eval_flops(self) -> float:
        return self.eval.total * self.checkpoints_evaluated

    @property
    def eval_hours(self) -> float:
        return self.eval_chip_hours / self.eval_chips

    @property
    def chip_hours(self) -> float:
        return self.train_chip_hours + self.eval_chip_hours

    @property
    def storage_bytes(self) -> int:
        return self.checkpoint_bytes * self.checkpoints_kept


@dataclass(frozen=True)
class StudyEstimate:
    sizes: tuple[SizeEstimate, ...]
    assumptions: Assumptions = field(default_factory=Assumptions)
    dataset_examples: int = 0
    latent_bytes: int = 0
    embedding_bytes: int = 0

    @property
    def train_chip_hours(self) -> float:
        return sum(s.train_chip_hours for s in self.sizes)

    @property
    def eval_chip_hours(self) -> float:
        return sum(s.eval_chip_hours for s in self.sizes)

    @property
    def chip_hours(self) -> float:
        return self.train_chip_hours + self.eval_chip_hours

    @property
    def checkpoint_bytes(self) -> int:
        return sum(s.storage_bytes for s in self.sizes)

    @property
    def storage_bytes(self) -> int:
        return self.latent_bytes + self.embedding_bytes + self.checkpoint_bytes

    def cost(self, chip_hours: float | None = None) -> float | None:
        """Money for `chip_hours` (default: the whole study); None without a price."""
        price = self.assumptions.price_per_chip_hour
        if price is None:
            return None
        return price * (self.chip_hours if chip_hours is None else chip_hours)


# --- evaluation ---------------------------------------------------------------------------------


def kept_checkpoints(training: TrainingSpec) -> list[int]:
    """The checkpoint steps a finished run keeps: every intervalSteps and the last step, the
    newest `keep` of them."""
    interval, steps, keep = training.checkpoint.interval_steps, training.steps, training.checkpoint.keep
    last = steps // interval  # multiples of the interval up to steps, counted without listing them
    newest = [k * interval for k in range(max(1, last - keep + 1), last + 1)]
    saved = newest if newest and newest[-1] == steps else [*newest, steps]
    return saved[-keep:]


def feature_flops_per_image(evaluation: EvaluationSpec) -> float:
    """The feature networks the metrics run on each generated image."""
    flops = 0.0
    if MetricName.fid in evaluation.metrics and evaluation.fid_features is FidFeatures.inception:
        flops += frozen_cost.INCEPTION_V3_FLOPS
    if MetricName.clip in evaluation.metrics:
        flops += frozen_cost.vision_tower_flops(frozen_cost.CLIP_VIT_B32)
    return flops


def eval_flops(run: RunConfig) -> EvalFlops:
    """One checkpoint of a RunConfig scored over its whole grid."""
    ev, m = run.evaluation, run.model
    generated = math.ceil(ev.num_samples / ev.batch_size) * ev.batch_size
    points = grid.run_grid_points(run)  # budgets give each size its own step counts
    forwards = sum(generated * p.steps * forwards_per_step(p.guidance) for p in points)
    images = generated * len(points)
    decoder = 0.0
    if run.data.autoencoder.kind == "sd-vae":
        decoder = frozen_cost.decoder_flops(frozen_cost.SD_DECODER, m.latent_size)
    return EvalFlops(
        points=len(points),
        images=images,
        unet=forwards * m.gflops_per_forward * 1e9,
        decoder=images * decoder,
        features=ev.num_samples * len(points) * feature_flops_per_image(ev),
    )


# --- the study ----------------------------------------------------------------------------------


def chip_hours(flops: float, slice_type: str, mfu: float) -> float:
    peak = SLICES[slice_type].generation.peak_bf16_flops_per_chip
    return flops / (peak * mfu) / SECONDS_PER_HOUR


def slice_label(req: SliceRequest) -> str:
    return req.slice_type if req.num_slices == 1 else f"{req.num_slices}x {req.slice_type}"


def size_estimate(run: RunConfig, assumptions: Assumptions) -> SizeEstimate:
    t, m = run.training, run.model
    train = train_flops_per_example(m.gflops_per_forward) * t.steps * t.global_batch
    ev = eval_flops(run)
    kept = kept_checkpoints(t)
    evaluated = len(grid.planned_checkpoints(run.evaluation, t.steps, kept))
    copies = 4 if t.ema.enabled else 3  # params, Adam's two moments, EMA
    return SizeEstimate(
        width=run.width,
        params=m.params,
        slice=slice_label(run.slice),
        chips=SLICES[run.slice.slice_type].chips * run.slice.num_slices,
        eval_slice=slice_label(run.eval_slice),
        eval_chips=SLICES[run.eval_slice.slice_type].chips * run.eval_slice.num_slices,
        steps=t.steps,
        train_flops=train,
        train_chip_hours=chip_hours(train, run.slice.slice_type, assumptions.train_mfu),
        checkpoints_evaluated=evaluated,
        eval=ev,
        eval_chip_hours=chip_hours(ev.total * evaluated, run.eval_slice.slice_type, assumptions.eval_mfu),
        checkpoint_bytes=copies * m.params * DTYPE_BYTES[t.param_dtype],
        checkpoints_kept=len(kept),
    )


def estimate(plan: Plan, assumptions: Assumptions | None = None) -> StudyEstimate:
    """The whole study of a Plan. The training data is one dataset every size reads; without a
    dataset size, it is what the longest training reads in one pass (steps x global batch)."""
    assumptions = assumptions or Assumptions()
    sizes = tuple(size_estimate(run, assumptions) for run in plan.runs)
    one_pass = max(r.training.steps * r.training.global_batch for r in plan.runs)
    examples = assumptions.dataset_examples or one_pass
    m = plan.runs[0].model
    return StudyEstimate(
        sizes=sizes,
        assumptions=assumptions,
        dataset_examples=examples,
        latent_bytes=examples * m.latent_size**2 * m.latent_channels * DATA_BYTES,
        embedding_bytes=examples * m.context_tokens * m.context_dim * DATA_BYTES,
    )


# --- progress against the estimate -------------------------------------------------------------


def spent_chip_hours(study: StudyEstimate, sizes: Iterable[SizeStatus]) -> float:
    """The estimate's chip-hours of the work the sizes' status says is done: training in
    proportion to the steps reached, in whole percent (all of it once a size evaluates or
    succeeded), evaluation once a size succeeded. Whole percent, so that the status the operator
    writes changes at most a hundred times per size rather than with every step the trainer
    reports. Cheap and monotone; a metered figure would need per-pod timestamps."""
    by_width = {s.width: s for s in sizes}
    spent = 0.0
    for est in study.sizes:
        size = by_width.get(est.width)
        if size is None:
            continue
        done = size.phase in (SizePhase.evaluating, SizePhase.succeeded)
        if done:
            spent += est.train_chip_hours
        elif size.step:
            percent = min(100 * size.step // est.steps, 100)
            spent += est.train_chip_hours * percent / 100
        if size.phase is SizePhase.succeeded:
            spent += est.eval_chip_hours
    return spent


def cost_status(study: StudyEstimate, sizes: Iterable[SizeStatus]) -> CostEstimate:
    """The status' cost block: the estimate's totals and what the sizes' progress has spent."""
    spent = spent_chip_hours(study, sizes)
    a = study.assumptions
    return CostEstimate(
        train_chip_hours=_figure(study.train_chip_hours),
        eval_chip_hours=_figure(study.eval_chip_hours),
        chip_hours=_figure(study.chip_hours),
        spent_chip_hours=_figure(spent),
        storage_bytes=study.storage_bytes,
        train_mfu=a.train_mfu,
        eval_mfu=a.eval_mfu,
        price_per_chip_hour=a.price_per_chip_hour,
        cost=_figure(study.cost()),
        spent_cost=_figure(study.cost(spent)),
    )


def _figure(value: float | None) -> float | None:
    """Four significant digits: an estimate, and a status that does not change with float noise."""
    return None if value is None else float(f"{value:.4g}")
