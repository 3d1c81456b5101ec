"""The U-Net and the helpers that build it from a run's configuration.

``build_unet`` accepts a ``ladder_api.plan.ModelConfig`` (what a RunConfig carries) or a
``ladder_api.ladder.UNetShape`` (what the analytic counter uses), so the same module is counted,
trained and evaluated. ``param_count`` uses ``jax.eval_shape``: no parameter is allocated.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ladder_trainer.models.unet import UNet, timestep_embedding

__all__ = ["UNet", "build_unet", "dummy_inputs", "param_count", "timestep_embedding"]

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _dtype(value) -> jnp.dtype:
    if value is None:
        return jnp.float32
    return DTYPES[str(getattr(value, "value", value))]


def _field(cfg, *names, default=None):
    for n in names:
        if hasattr(cfg, n):
            return getattr(cfg, n)
    return default


def build_unet(cfg, compute_dtype="float32", param_dtype="float32") -> UNet:
    """The Flax module for a ModelConfig or UNetShape, computing in compute_dtype."""
    return UNet(
        base_channels=cfg.base_channels,
        channel_mult=tuple(cfg.channel_mult),
        num_res_blocks=cfg.num_res_blocks,
        attention_levels=tuple(cfg.attention_levels),
        num_heads=cfg.num_heads,
        transformer_depth=cfg.transformer_depth,
        norm_groups=cfg.norm_groups,
        out_channels=_field(cfg, "latent_channels", "out_channels", default=4),
        dtype=_dtype(compute_dtype),
        param_dtype=_dtype(param_dtype),
    )


def dummy_inputs(cfg, batch: int = 1, latent_size: int | None = None, context_tokens: int | None = None):
    """Shape-only inputs (x, t, context) for init / eval_shape / lowering."""
    size = latent_size or _field(cfg, "latent_size", default=8)
    # A level halves the side each time: keep the smallest size that stays integral.
    size = max(size, 2 ** (len(cfg.channel_mult) - 1))
    tokens = context_tokens or _field(cfg, "context_tokens", default=1)
    channels = _field(cfg, "latent_channels", "in_channels", default=4)
    x = jax.ShapeDtypeStruct((batch, size, size, channels), jnp.float32)
    t = jax.ShapeDtypeStruct((batch,), jnp.float32)
    ctx = jax.ShapeDtypeStruct((batch, tokens, cfg.context_dim), jnp.float32)
    return x, t, ctx


def init_params(cfg, rng, param_dtype="float32"):
    """Real parameters (allocated): the trainer's initialisation."""
    model = build_unet(cfg, param_dtype=param_dtype)
    x, t, ctx = dummy_inputs(cfg, context_tokens=1, latent_size=2 ** (len(cfg.channel_mult) - 1))
    zeros = [jnp.zeros(a.shape, a.dtype) for a in (x, t, ctx)]
    return jax.jit(model.init)(rng, *zeros)["params"]


def abstract_params(cfg, param_dtype="float32"):
    """Parameter shapes and dtypes only, via eval_shape (allocation-free)."""
    model = build_unet(cfg, param_dtype=param_dtype)
    x, t, ctx = dummy_inputs(cfg, context_tokens=1, latent_size=2 ** (len(cfg.channel_mult) - 1))
    return jax.eval_shape(model.init, jax.random.key(0), x, t, ctx)["params"]


def param_count(cfg) -> int:
    """Parameters of the real Flax module (must equal ladder_api.ladder.param_count exactly)."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(abstract_params(cfg)))
