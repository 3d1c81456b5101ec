"""The model under evaluation: which checkpoints, their weights, and the noise predictor.

Weights come from the trainer's checkpoints (`ladder_trainer.checkpointing`), checked to hold this
run's model before any array is read; EMA weights when training.ema says they are the ones to
evaluate. The predictor is a `jax.tree_util.Partial` over the parameters, so the jitted sampling
loop takes them as arguments (not constants) and is compiled once per grid shape.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax.numpy as jnp
from jax.tree_util import Partial

from ladder_api.errors import UserError
from ladder_api.grid import select_checkpoints
from ladder_api.memory import score_bytes_per_row
from ladder_api.plan import ModelConfig, RunConfig

# On a CPU, the U-Net forward runs in slices whose level-0 attention scores stay under this many
# bytes per device: 16 rows at c = 64 and 32x32 latents, the fastest slice measured on the 2-core
# VM (bench/evaluator.md, "Sampling in slices, YNN off").
CPU_SLICE_BYTES = 512 << 20


def select_steps(run: RunConfig, checkpoint_uri: str) -> list[int]:
    """The checkpoint steps run.evaluation.checkpoints asks for (ladder_api.grid's selection), all
    present in checkpoint_uri, or a UserError."""
    from ladder_trainer import checkpointing

    available = checkpointing.list_steps(checkpoint_uri)
    if not available:
        raise UserError(
            f"no checkpoint found at {checkpoint_uri} (--checkpoint): train this size first "
            f"(python -m ladder_trainer --config ...) or point --checkpoint at {run.paths.checkpoints}"
        )
    where = f"{checkpoint_uri} (--checkpoint)"
    return select_checkpoints(run.evaluation, run.training.steps, available, where)


def uses_ema(run: RunConfig) -> bool:
    return run.training.ema.enabled and run.training.ema.evaluate_ema


def load_params(run: RunConfig, checkpoint_uri: str, step: int):
    from ladder_trainer import checkpointing

    params, _ = checkpointing.restore_params(checkpoint_uri, step, ema=uses_ema(run), model_config=run.model,
                                             compute_dtype=sampling_dtype(run))
    return params


def make_apply(run: RunConfig) -> Callable:
    """apply(params, x, t, context) -> the U-Net's output. The jit cache is keyed by this
    function's identity, so one function is kept per model configuration: every checkpoint and
    every re-evaluation in a process reuses the compiled sampling loops."""
    training = run.training
    return _apply_for(run.model.model_dump_json(), sampling_dtype(run), training.param_dtype.value)


def sampling_dtype(run: RunConfig) -> str:
    """evaluation.samplingDtype, else the dtype the model trained in."""
    chosen = run.evaluation.sampling_dtype
    return run.training.compute_dtype.value if chosen == "training" else chosen


@functools.lru_cache(maxsize=8)
def _apply_for(model_json: str, compute_dtype: str, param_dtype: str) -> Callable:
    from ladder_api.plan import ModelConfig
    from ladder_trainer.models import build_unet

    unet = build_unet(ModelConfig.model_validate_json(model_json), compute_dtype=compute_dtype,
                      param_dtype=param_dtype)

    def apply(params, x, t, context):
        return unet.apply({"params": params}, x, t.astype(jnp.float32), context)

    return apply


def eps_fn(apply: Callable, params) -> Partial:
    return Partial(apply, params)


def forward_rows(model: ModelConfig, platform: str, devices: int) -> int | None:
    """The most rows one U-Net forward of the sampling loop runs (ladder_evaluator.sampling's
    forward_rows), or None for the whole batch at once.

    On a CPU a forward's time per row grows with its rows once the attention score matrices
    outgrow the caches (c = 64, 32x32x4 latents, 128 rows: 16-row slices sample 1.2-1.3x as fast
    as the whole batch at once), so the batch runs in slices of a few rows per device.
    Accelerators take the whole batch: their matmul units want large operands, and the eval
    slice's memory is checked at validation (ladder_api.eval_memory). A multiple of the device
    count, so each device keeps its share."""
    per_row = score_bytes_per_row(model.shape(), model.latent_size)
    if platform != "cpu" or not per_row:
        return None
    return max(1, CPU_SLICE_BYTES // per_row) * devices
