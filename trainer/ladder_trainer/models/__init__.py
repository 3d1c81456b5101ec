"""The U-Net and the helpers that build it from a run's configuration.

``build_unet`` accepts a ``ladder_api.plan.ModelConfig`` (what a RunConfig carries) or a
``ladder_api.ladder.UNetShape`` (what the analytic counter uses), so the same module is counted,
trained and evaluated. ``param_count`` uses ``jax.eval_shape``: no parameter is allocated.

The SD autoencoder is ``ladder_trainer.models.autoencoder`` (its docstring lists the API); weights in
diffusers' layout for both load through ``ladder_trainer.weights``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from ladder_trainer.models.unet import UNet, timestep_embedding

__all__ = [
    "UNet", "build_unet", "dummy_inputs", "init_params", "make_apply", "param_count", "timestep_embedding",
]

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


def build_unet(cfg, compute_dtype="float32", param_dtype="float32", remat: bool = False) -> UNet:
    """The Flax module for a ModelConfig or UNetShape, computing in compute_dtype (remat: recompute
    block internals in the backward pass; same parameters, same outputs)."""
    return UNet(
        base_channels=cfg.base_channels,
        channel_mult=tuple(cfg.channel_mult),
        num_res_blocks=cfg.num_res_blocks,
        attention_levels=tuple(cfg.attention_levels),
        num_heads=cfg.num_heads,
        transformer_depth=cfg.transformer_depth,
        norm_groups=cfg.norm_groups,
        out_channels=_field(cfg, "latent_channels", "out_channels", default=4),
        remat=remat,
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
    """Initial parameters, made on the host with numpy (see ``host_init``).

    rng is a jax key or an int seed. Flax's own ``init`` would give the same distributions, but
    jitting it costs tens of seconds of XLA compile on a CPU (every initializer is a threefry
    program), and eager init compiles each op; the host path costs nothing to compile, is
    identical on every host and for every sharding, and keeps tests fast.
    """
    seed = rng if isinstance(rng, int) else int(jax.random.randint(rng, (), 0, 2**31 - 1))
    abstract = abstract_params(cfg, param_dtype)
    return jax.tree_util.tree_map(jnp.asarray, host_init(abstract, seed))


def host_init(abstract, seed: int):
    """numpy arrays for an abstract param tree, with Flax's default initializers by leaf name:
    kernels lecun-normal (truncated normal, variance 1/fan_in), biases zeros, norm scales ones.
    Each leaf's stream is seeded by (seed, its path), so it does not depend on traversal order."""
    import hashlib

    import numpy as np
    from scipy.stats import truncnorm

    def make(path, leaf):
        name = jax.tree_util.keystr(path)
        dtype = np.dtype(leaf.dtype) if leaf.dtype != jnp.bfloat16 else np.float32
        if name.endswith("['bias']"):
            out = np.zeros(leaf.shape, dtype)
        elif name.endswith("['scale']"):
            out = np.ones(leaf.shape, dtype)
        else:
            fan_in = math.prod(leaf.shape[:-1])
            digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
            gen = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            # Flax's truncated_normal: truncated at +-2 stddev, rescaled to unit variance.
            std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
            out = (truncnorm.rvs(-2, 2, size=leaf.shape, random_state=gen) * std).astype(dtype)
        return out.astype(leaf.dtype) if leaf.dtype == jnp.bfloat16 else out

    return jax.tree_util.tree_map_with_path(make, abstract)


def abstract_params(cfg, param_dtype="float32"):
    """Parameter shapes and dtypes only, via eval_shape (allocation-free; cached per layout)."""
    key = (
        cfg.base_channels, cfg.context_dim, tuple(cfg.channel_mult), cfg.num_res_blocks,
        tuple(cfg.attention_levels), cfg.num_heads, cfg.transformer_depth, cfg.norm_groups,
        _field(cfg, "latent_channels", "in_channels", default=4),
        str(getattr(param_dtype, "value", param_dtype)),
    )
    return _abstract_params(key, cfg, param_dtype)


@functools.lru_cache(maxsize=64)
def _abstract_params_cached(key):
    cfg, param_dtype = _PENDING[key]
    model = build_unet(cfg, param_dtype=param_dtype)
    x, t, ctx = dummy_inputs(cfg, context_tokens=1, latent_size=2 ** (len(cfg.channel_mult) - 1))
    return jax.eval_shape(model.init, jax.random.key(0), x, t, ctx)["params"]


_PENDING: dict = {}


def _abstract_params(key, cfg, param_dtype):
    _PENDING[key] = (cfg, param_dtype)
    try:
        return _abstract_params_cached(key)
    finally:
        _PENDING.pop(key, None)


def param_count(cfg) -> int:
    """Parameters of the real Flax module (must equal ladder_api.ladder.param_count exactly)."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(abstract_params(cfg)))


def make_apply(cfg, compute_dtype="float32"):
    """A jitted `apply(params, x[B,H,W,C], t[B], context[B,T,D]) -> eps or v` for samplers.

    params is the bare parameter tree (as checkpointing.restore_params returns it); t may be
    fractional (the sinusoidal embedding is continuous)."""
    model = build_unet(cfg, compute_dtype)

    @jax.jit
    def apply(params, x, t, context):
        t = jnp.broadcast_to(jnp.asarray(t, jnp.float32), x.shape[:1])
        return model.apply({"params": params}, x, t, context)

    return apply
