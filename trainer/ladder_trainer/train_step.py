"""The training state and `train_step(state, batch, rng)`: one pure, jitted optimizer step.

Everything a step needs that is not an array (the Flax module, the optax transformation, the
noise schedule, prediction type, guidance dropout, EMA decay) lives in ``StepConfig``, a static
(non-pytree) field of the state: the step stays a module-level pure function, and jit retraces only
when the recipe changes. The unconditional context is an array leaf of the state (it comes from
the data, not the recipe) but is never checkpointed: it is rebuilt from the data source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from ladder_trainer import diffusion
from ladder_trainer.models import UNet, abstract_params, build_unet, init_params
from ladder_trainer.optim import make_optimizer
from ladder_trainer.sharding import put_global


@dataclass(frozen=True)
class StepConfig:
    model: UNet
    tx: optax.GradientTransformation
    schedule: diffusion.NoiseSchedule
    prediction_type: str
    guidance_dropout: float
    ema_decay: float  # 0 when EMA is off: ema_params then track params exactly
    ema_warmup: bool = False  # min(decay, (1 + n) / (10 + n)) at update n (training.ema.warmup)

    @classmethod
    def from_run(cls, run) -> StepConfig:
        t = run.training
        return cls(
            model=build_unet(run.model, t.compute_dtype.value, t.param_dtype.value, remat=needs_remat(run)),
            tx=make_optimizer(t),
            schedule=diffusion.NoiseSchedule.from_spec(t.noise_schedule),
            prediction_type=t.prediction_type.value,
            guidance_dropout=float(t.guidance_dropout),
            ema_decay=float(t.ema.decay) if t.ema.enabled else 0.0,
            ema_warmup=bool(t.ema.warmup),
        )


def needs_remat(run) -> bool:
    """Rematerialise block internals only when the memory plan says the size would not fit its
    slice otherwise (ladder_api.memory, the same plan `ladder validate` checks)."""
    from ladder_api.memory import plan_for_run

    return plan_for_run(run).remat


@struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    ema_params: Any
    opt_state: Any
    null_context: jax.Array  # [T, D] unconditional embedding, for guidance dropout
    config: StepConfig = struct.field(pytree_node=False)


def _assemble(config: StepConfig, params, null_context) -> TrainState:
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        ema_params=jax.tree_util.tree_map(jnp.copy, params),
        opt_state=config.tx.init(params),
        null_context=jnp.asarray(null_context, jnp.float32),
        config=config,
    )


def init_state(run, seed: int, null_context, config: StepConfig | None = None, shardings=None) -> TrainState:
    """Fresh state; pass the config of an abstract_state to get an identical (jit-compatible) tree,
    and its shardings to have the state made in its layout over the mesh: parameters leaf by leaf
    into their shards (init_params), then EMA and optimizer state by one jitted program whose
    inputs and outputs are all sharded, so no device holds more than its share at any point."""
    config = config or StepConfig.from_run(run)
    scheme = run.training.initialization.value
    null_context = np.asarray(null_context, np.float32)
    if shardings is None:
        params = init_params(run.model, int(seed), run.training.param_dtype.value, scheme=scheme)
        return state_initializer(config)(params, jnp.asarray(null_context))
    params = init_params(run.model, int(seed), run.training.param_dtype.value, shardings.params, scheme)
    null = put_global(null_context, shardings.null_context)
    return state_initializer(config, shardings)(params, null)


def state_initializer(config: StepConfig, shardings=None):
    """(params, null_context) -> TrainState as one jitted program (eager optax init would compile
    one program per leaf). The params are donated: the state's params are the same buffers."""
    in_shardings = None if shardings is None else (shardings.params, shardings.null_context)
    return jax.jit(lambda p, n: _assemble(config, p, n), in_shardings=in_shardings,
                   out_shardings=shardings, donate_argnums=(0,))


def abstract_state(run, null_context_shape, config: StepConfig | None = None) -> TrainState:
    """Shapes and dtypes of the state (no allocation): restore targets and sharding plans."""
    config = config or StepConfig.from_run(run)
    params = abstract_params(run.model, run.training.param_dtype.value)

    null = jax.ShapeDtypeStruct(tuple(null_context_shape), jnp.float32)
    return jax.eval_shape(lambda p, n: _assemble(config, p, n), params, null)


def loss_fn(params, state: TrainState, batch, rng):
    cfg = state.config
    drop_rng, loss_rng = jax.random.split(rng)
    # Data may be stored as float16 (ladder-latents/v2): widened here, on the device.
    latents, context = (batch[k].astype(jnp.float32) for k in ("latents", "context"))
    context = diffusion.drop_context(drop_rng, context, state.null_context, cfg.guidance_dropout)

    def apply(p, x, t, ctx):
        return cfg.model.apply({"params": p}, x, t, ctx)

    return diffusion.diffusion_loss(
        apply, params, cfg.schedule, cfg.prediction_type, latents, context, loss_rng
    )


def ema_decay_at(n, decay: float, warmup: bool):
    """The decay of EMA update n (0 for the first): CompVis' LitEma / diffusers' EMAModel warm-up
    min(decay, (1 + n) / (10 + n)), or `decay` throughout. The initial weights' share of the EMA
    after N updates is the product of these: 9! N! / (N + 9)! while the warm-up binds."""
    if not warmup or decay == 0.0:
        return decay  # a Python float, so 1 - decay rounds as before the warm-up existed
    n = jnp.asarray(n, jnp.float32)
    return jnp.minimum(jnp.float32(decay), (1.0 + n) / (10.0 + n))


def ema_update(ema_params, params, n, decay: float, warmup: bool):
    """The EMA after update n: d * ema + (1 - d) * params, d = ema_decay_at(n)."""
    d = ema_decay_at(n, decay, warmup)
    return jax.tree_util.tree_map(lambda e, p: (d * e + (1.0 - d) * p).astype(e.dtype), ema_params, params)


def _train_step(state: TrainState, batch, rng):
    cfg = state.config
    loss, grads = jax.value_and_grad(loss_fn)(state.params, state, batch, rng)
    updates, opt_state = cfg.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = ema_update(state.ema_params, params, state.step, cfg.ema_decay, cfg.ema_warmup)
    new_state = state.replace(step=state.step + 1, params=params, ema_params=ema, opt_state=opt_state)
    metrics = {"loss": loss, "grad_norm": optax.global_norm(grads)}
    return new_state, metrics


train_step = jax.jit(_train_step, donate_argnums=(0,))
"""The jitted step: (state, {'latents': [B,H,W,C], 'context': [B,T,D]}, key) -> (state, metrics)."""
