"""The U-Net and the helpers that build it from a run's configuration.

``build_unet`` accepts a ``ladder_api.plan.ModelConfig`` (what a RunConfig carries) or a
``ladder_api.ladder.UNetShape`` (what the analytic counter uses); a ModelConfig becomes a shape
through ``ModelConfig.shape()``, so the same module is counted, trained and evaluated.
``param_count`` uses ``jax.eval_shape``: no parameter is allocated.

The SD autoencoder is ``ladder_trainer.models.autoencoder`` (its docstring lists the API); weights
in diffusers' layout for both load through ``ladder_trainer.weights``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from ladder_api.ladder import UNetShape
from ladder_trainer.models.unet import UNet, timestep_embedding

__all__ = [
    "UNet", "build_unet", "dummy_inputs", "held_dtypes", "init_params", "make_apply", "param_count",
    "timestep_embedding",
    "unet_shape",
]

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _dtype(value: str | None) -> jnp.dtype:
    if value is None:
        return jnp.float32
    return DTYPES[value]


def unet_shape(cfg) -> UNetShape:
    """A RunConfig's ModelConfig maps to a U-Net through ModelConfig.shape() (ladder_api.plan),
    the one mapping the analytic counters use too; a UNetShape is taken as it is."""
    return cfg if isinstance(cfg, UNetShape) else cfg.shape()


def build_unet(cfg, compute_dtype="float32", param_dtype="float32", remat: bool = False) -> UNet:
    """The Flax module for a ModelConfig or UNetShape, computing in compute_dtype (remat: recompute
    block internals in the backward pass; same parameters, same outputs)."""
    shape = unet_shape(cfg)
    return UNet(
        base_channels=shape.base_channels,
        channel_mult=tuple(shape.channel_mult),
        num_res_blocks=shape.num_res_blocks,
        attention_levels=tuple(shape.attention_levels),
        num_heads=shape.num_heads,
        transformer_depth=shape.transformer_depth,
        norm_groups=shape.norm_groups,
        out_channels=shape.out_channels,
        remat=remat,
        dtype=_dtype(compute_dtype),
        param_dtype=_dtype(param_dtype),
    )


def dummy_inputs(cfg, batch: int = 1, latent_size: int | None = None, context_tokens: int | None = None):
    """Shape-only inputs (x, t, context) for init / eval_shape / lowering; the latent size and
    context length default to a ModelConfig's own (a UNetShape has none: the smallest valid)."""
    shape = unet_shape(cfg)
    smallest = 2 ** (len(shape.channel_mult) - 1)  # each level halves the side
    size = max(latent_size or getattr(cfg, "latent_size", smallest), smallest)
    tokens = context_tokens or getattr(cfg, "context_tokens", 1)
    x = jax.ShapeDtypeStruct((batch, size, size, shape.in_channels), jnp.float32)
    t = jax.ShapeDtypeStruct((batch,), jnp.float32)
    ctx = jax.ShapeDtypeStruct((batch, tokens, shape.context_dim), jnp.float32)
    return x, t, ctx


def init_params(cfg, rng, param_dtype="float32", shardings=None, scheme: str = "lecun-normal"):
    """Initial parameters, made on the host with numpy (see ``host_init``), one leaf at a time,
    by `scheme` (the trainer passes training.initialization; the default, every kernel random,
    keeps an untrained model's outputs informative for tests and benchmarks of the samplers).

    rng is a jax key or an int seed. Flax's own ``init`` would give the same distributions, but
    jitting it costs tens of seconds of XLA compile on a CPU (every initializer is a threefry
    program), and eager init compiles each op; the host path costs nothing to compile, is
    identical on every host and for every sharding, and keeps tests fast.

    With shardings (a Sharding per leaf, as ``sharding.tree_shardings`` gives) every leaf is made
    directly in its layout: each device receives only its own shard, so no chip ever holds the
    whole model (4.9 B float32 parameters are 18 GiB; a v5e chip has 16). The values do not
    depend on the sharding, and the host holds one leaf at a time.
    """
    seed = rng if isinstance(rng, int) else int(jax.random.randint(rng, (), 0, 2**31 - 1))
    abstract = abstract_params(cfg, param_dtype)
    if shardings is None:
        return jax.tree_util.tree_map_with_path(
            lambda path, leaf: jnp.asarray(host_init_leaf(path, leaf, seed, scheme)), abstract
        )

    def make(path, leaf, sharding):
        value = host_init_leaf(path, leaf, seed, scheme)
        return jax.make_array_from_callback(leaf.shape, sharding, lambda index: value[index])

    return jax.tree_util.tree_map_with_path(make, abstract, shardings)


def host_init(abstract, seed: int, scheme: str = "lecun-normal"):
    """numpy arrays for an abstract param tree (see ``host_init_leaf``)."""
    return jax.tree_util.tree_map_with_path(lambda p, a: host_init_leaf(p, a, seed, scheme), abstract)


# The kernels CompVis' openaimodel.py wraps in zero_module (the U-Net that trained SD v1.5): each
# ResBlock's second convolution, each SpatialTransformer's proj_out, the final conv_out. Every
# residual branch then starts as the identity and the network's output at zero, which keeps the
# early steps of deep (large) models stable in bf16; their biases are zero under every scheme.
ZERO_INIT_KERNELS = ("['conv2']['kernel']", "['proj_out']['kernel']", "['conv_out']['kernel']")


def is_zero_init(name: str, scheme: str) -> bool:
    """Whether the leaf at `name` (a jax keystr path) starts at zero under `scheme`."""
    return scheme == "compvis" and name.endswith(ZERO_INIT_KERNELS)


def host_init_leaf(path, leaf, seed: int, scheme: str = "lecun-normal"):
    """One leaf's initial value, with Flax's default initializers by leaf name: kernels
    lecun-normal (truncated normal, variance 1/fan_in), biases zeros, norm scales ones, and under
    the compvis scheme the ZERO_INIT_KERNELS zeros. The stream is seeded by (seed, the leaf's
    path), so it depends neither on traversal order nor on which other leaves exist, and the two
    schemes differ only in the zeroed leaves."""
    import hashlib

    import numpy as np
    from scipy.stats import truncnorm

    name = jax.tree_util.keystr(path)
    dtype = np.dtype(leaf.dtype) if leaf.dtype != jnp.bfloat16 else np.float32
    if scheme not in ("compvis", "lecun-normal"):
        raise ValueError(f"unknown initialization scheme {scheme!r}")
    if name.endswith("['bias']") or is_zero_init(name, scheme):
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


def abstract_params(cfg, param_dtype="float32"):
    """Parameter shapes and dtypes only, via eval_shape (allocation-free; cached per shape)."""
    return _abstract_params(unet_shape(cfg), str(param_dtype))


@functools.lru_cache(maxsize=64)
def _abstract_params(shape: UNetShape, param_dtype: str):
    model = build_unet(shape, param_dtype=param_dtype)
    x, t, ctx = dummy_inputs(shape, context_tokens=1)
    return jax.eval_shape(model.init, jax.random.key(0), x, t, ctx)["params"]


def held_dtypes(abstract, compute_dtype: str):
    """The parameter shapes with every convolution and dense weight (kernel, bias) in
    compute_dtype, norm scales and offsets as they are: what a model computing in compute_dtype
    needs to hold. Exact: Flax's Conv and Dense cast their kernel and bias to the compute dtype
    before use (promote_dtype), while GroupNorm and LayerNorm use theirs in the stored dtype."""
    dtype = _dtype(compute_dtype)

    def held(path, leaf):
        norm = any(getattr(k, "key", "").startswith("norm") for k in path)
        if norm or not jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf
        return jax.ShapeDtypeStruct(leaf.shape, dtype)

    return jax.tree_util.tree_map_with_path(held, abstract)


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
