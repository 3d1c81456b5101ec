"""Analytic per-chip memory of training one ladder size: will it fit the slice's HBM?

Pure (no JAX): `ladder validate` and `ladder sizes` use it without loading the trainer.

Per chip, with P parameters, fsdp the FSDP axis size and b the per-chip batch
(global batch / chips):
  parameters        P x param bytes / fsdp
  gradients         P x param bytes / fsdp          (reduce-scattered onto the fsdp shards)
  optimizer state   2 P x param bytes / fsdp        (Adam's first and second moments)
  EMA               P x param bytes / fsdp          (when ema.enabled)
  compute copy      P x compute bytes               (gathered / cast weights, when fsdp > 1 or the
                                                     compute dtype differs from the param dtype)
  activations       b x A x compute bytes, where A is the tensors the backward pass keeps per
                    example, summed over the U-Net's blocks (``activation_elements``), plus the
                    attention score matrices in float32.
The activation model counts what the backward pass needs from each block's forward; XLA fuses
element-wise chains and reuses buffers, which ACTIVATION_FACTOR calibrates (checked against XLA's
compiled memory analysis of the real train step for small sizes, within 25%, in the trainer's
tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ladder_api.ladder import UNetShape, _walk, param_count
from ladder_api.tpu import GIB, SLICES, SliceType

DTYPE_BYTES = {"float32": 4, "bfloat16": 2}
ACTIVATION_FACTOR = 1.45  # XLA (CPU) keeps ~45% more than the count; fitted on 4 small configs


def _bytes(dtype: str) -> int:  # a spec Precision is a StrEnum, so it is the str key itself
    return DTYPE_BYTES[dtype]


QUERY_CHUNK = 1024  # the trainer's memory-efficient attention chunk (ladder_trainer.models.unet)


def score_bytes_per_row(shape: UNetShape, latent_size: int) -> int:
    """Float32 bytes of the largest self-attention score matrix one row of a forward holds at once:
    the highest-resolution attention level, its queries in chunks of QUERY_CHUNK (0 without
    attention). What ladder_evaluator.model.forward_rows bounds on a CPU."""
    if not shape.attention_levels:
        return 0
    side = latent_size // 2 ** min(min(shape.attention_levels), len(shape.level_channels) - 1)
    tokens = side * side
    return 4 * shape.num_heads * tokens * min(tokens, QUERY_CHUNK)


def block_activations(shape: UNetShape, latent_size: int, context_tokens: int) -> list[tuple[int, int, int]]:
    """Per U-Net block: (elements its backward keeps, elements of its input, float32 attention
    score elements it keeps). Scores are kept only where attention is not chunked (at most
    QUERY_CHUNK tokens); chunked attention recomputes them, leaving a transient working set."""
    n_levels = len(shape.level_channels)
    ctx = context_tokens

    def side(level: int) -> int:
        return latent_size // (2 ** min(level, n_levels - 1))

    blocks = []
    for kind, level, cin, cout in _walk(shape):
        if kind == "conv_in":
            hw = latent_size**2
            blocks.append((hw * (cin + cout), hw * cin, 0))
        elif kind == "conv_out":
            hw = latent_size**2
            blocks.append((hw * (3 * cin + cout), hw * cin, 0))
        elif kind == "res":
            hw = side(level) ** 2
            blocks.append((hw * (3 * cin + 5 * cout + (cout if cin != cout else 0)), hw * cin, 0))
        elif kind == "attn":
            hw = side(level) ** 2
            d = shape.transformer_depth
            scores = d * shape.num_heads * hw * (hw + ctx) * 2 if hw <= QUERY_CHUNK else 0
            blocks.append((hw * cin * (4 + d * 22) + d * 2 * ctx * cin, hw * cin, scores))
        elif kind == "down":
            blocks.append((side(level + 1) ** 2 * cout, side(level) ** 2 * cin, 0))
        elif kind == "up":
            hw = side(level - 1) ** 2
            blocks.append((hw * (cin + cout), side(level) ** 2 * cin, 0))
    return blocks


def activation_bytes_per_example(shape: UNetShape, latent_size: int, context_tokens: int,
                                 compute_bytes: int, remat: bool) -> float:
    """What one example's forward leaves for the backward pass, at its peak.

    Without remat every block keeps its internals. With remat only block inputs are kept, and
    one block at a time re-materialises its internals during the backward pass."""
    blocks = block_activations(shape, latent_size, context_tokens)
    full = [e * compute_bytes + s * 4 for e, _i, s in blocks]
    if not remat:
        return ACTIVATION_FACTOR * sum(full)
    return ACTIVATION_FACTOR * (sum(i * compute_bytes for _e, i, _s in blocks) + max(full))


@dataclass(frozen=True)
class MemoryPlan:
    width: int
    params: int
    per_chip_batch: int
    fsdp: int
    params_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    ema_bytes: float
    compute_copy_bytes: float
    activation_bytes: float
    hbm_bytes: float | None = None
    remat: bool = False

    @property
    def total_bytes(self) -> float:
        return (self.params_bytes + self.grads_bytes + self.optimizer_bytes + self.ema_bytes
                + self.compute_copy_bytes + self.activation_bytes)

    @property
    def fits(self) -> bool:
        return self.hbm_bytes is None or self.total_bytes <= self.hbm_bytes

    def rows(self) -> list[tuple[str, float]]:
        return [
            ("parameters", self.params_bytes),
            ("gradients", self.grads_bytes),
            ("optimizer state", self.optimizer_bytes),
            ("EMA", self.ema_bytes),
            ("compute copy of weights", self.compute_copy_bytes),
            (f"activations (batch {self.per_chip_batch}/chip)", self.activation_bytes),
            ("total", self.total_bytes),
        ]


def plan_memory(
    shape: UNetShape,
    *,
    latent_size: int,
    context_tokens: int,
    per_chip_batch: int,
    fsdp: int = 1,
    param_dtype="float32",
    compute_dtype="bfloat16",
    ema: bool = True,
    hbm_bytes: float | None = None,
    remat: bool | None = None,
) -> MemoryPlan:
    """remat None: what the trainer does, i.e. rematerialise only when the plain plan does not fit."""
    if remat is None:
        plain = plan_memory(shape, latent_size=latent_size, context_tokens=context_tokens,
                            per_chip_batch=per_chip_batch, fsdp=fsdp, param_dtype=param_dtype,
                            compute_dtype=compute_dtype, ema=ema, hbm_bytes=hbm_bytes, remat=False)
        if plain.fits:
            return plain
        remat = True
    p = param_count(shape)
    pb, cb = _bytes(param_dtype), _bytes(compute_dtype)
    copy = p * cb if (fsdp > 1 or pb != cb) else 0
    return MemoryPlan(
        width=shape.base_channels,
        params=p,
        per_chip_batch=per_chip_batch,
        fsdp=fsdp,
        params_bytes=p * pb / fsdp,
        grads_bytes=p * pb / fsdp,
        optimizer_bytes=2 * p * pb / fsdp,
        ema_bytes=p * pb / fsdp if ema else 0,
        compute_copy_bytes=copy,
        activation_bytes=per_chip_batch * activation_bytes_per_example(
            shape, latent_size, context_tokens, cb, remat
        ),
        hbm_bytes=hbm_bytes,
        remat=remat,
    )


def plan_for(spec, width: int, slice_type: str | None = None, num_slices: int | None = None,
             global_batch: int | None = None) -> MemoryPlan:
    """The plan of one width of a ScalingExperimentSpec on its slice (or the one given)."""
    from ladder_api.plan import model_config

    req = spec.resources.slice_for(width)
    # The width's own sharding (a slice rule may set FSDP for the large sizes).
    return plan_for_model(model_config(spec.ladder, width), spec.training_for(width),
                          slice_type or req.slice_type,
                          num_slices or (req.num_slices if slice_type is None else 1), global_batch)


def plan_for_run(run) -> MemoryPlan:
    """The plan of a RunConfig on its own slice: what the trainer sizes itself by (remat)."""
    return plan_for_model(run.model, run.training, run.slice.slice_type, run.slice.num_slices)


def plan_for_model(model, training, slice_type: str, num_slices: int = 1,
                   global_batch: int | None = None) -> MemoryPlan:
    """From a plan.ModelConfig and a TrainingSpec: the one place a plan is sized for a slice."""
    st: SliceType = SLICES[slice_type]
    chips = st.chips * num_slices
    t = training
    batch = global_batch or t.global_batch
    return plan_memory(
        model.shape(),
        latent_size=model.latent_size,
        context_tokens=model.context_tokens,
        per_chip_batch=math.ceil(batch / chips),
        fsdp=min(t.sharding.fsdp, chips),
        param_dtype=t.param_dtype,
        compute_dtype=t.compute_dtype,
        ema=t.ema.enabled,
        hbm_bytes=st.hbm_bytes_per_chip,
    )


def smallest_fitting_slice(spec, width: int) -> str | None:
    """The slice with the fewest chips (v5e before v5p at equal chips) that holds this width."""
    for name, st in sorted(SLICES.items(), key=lambda kv: (kv[1].chips, kv[1].generation.name != "v5e")):
        if spec.training.global_batch % st.chips and st.chips < spec.training.global_batch:
            continue
        if plan_for(spec, width, slice_type=name).fits:
            return name
    return None


def gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def memory_problems(spec) -> list[str]:
    """One message per width whose training slice cannot hold it (empty when all fit)."""
    problems = []
    for w in spec.ladder.widths:
        req = spec.resources.slice_for(w)
        plan = plan_for(spec, w)
        if plan.fits:
            continue
        better = smallest_fitting_slice(spec, w)
        hint = f"the smallest slice that fits is {better}" if better else "no single listed slice fits it"
        problems.append(
            f"ladder.widths: width {w} needs about {gib(plan.total_bytes)} per chip on {req.slice_type} "
            f"(batch {plan.per_chip_batch}/chip, fsdp {plan.fsdp}) but a chip has {gib(plan.hbm_bytes)}; "
            f"{hint} (or raise training.sharding.fsdp / lower training.globalBatch)"
        )
    return problems
