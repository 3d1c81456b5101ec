"""SD v1.x's KL autoencoder (``AutoencoderKL``, f = 8) in Flax Linen, NHWC.

The paper trains every U-Net on latents of the frozen SD VAE; this module is that VAE, written so
the trainer, data preparation and the evaluator share one implementation with the U-Net's
conventions (Linen, parameters a plain pytree, compute dtype separate from parameter dtype).

Public API
----------
``AutoencoderConfig``          frozen dataclass; ``SD_VAE`` is sd-vae-ft-mse / sd-vae-ft-ema's
                               (widths 128/256/512/512, 2 layers per block, 4 latent channels,
                               32 norm groups, scaling factor 0.18215).
``codec(config, compute_dtype)``  -> ``Codec`` with jitted, cached-per-config functions:
    ``encode(params, images, rng=None) -> latents``   images [B, H, W, 3] in [-1, 1]; latents
                                                    [B, H/8, W/8, C] in the U-Net's space
                                                    (posterior mean, or a sample when rng given)
    ``decode(params, latents) -> images``            the inverse, images about [-1, 1]
    These are what ``ladder prepare`` and the evaluator call.
``AutoencoderKL(config, dtype)``  the module, for training an autoencoder or for finer control:
    ``.encode(images) -> DiagonalGaussian``         in the autoencoder's own (unscaled) space
    ``.decode(z) -> images``
    ``__call__(images, rng=None) -> (reconstruction, posterior)``
``DiagonalGaussian``           the posterior: ``mean``, ``logvar``, ``std``, ``sample(rng)``, ``kl()``.
``init_params(config, seed)``  fresh parameters (host-side, no compile).
Weights from / to diffusers' layout: ``ladder_trainer.weights.load_autoencoder(uri)`` ->
``(config, params)`` and ``save_autoencoder(uri, config, params)``.

Latent scaling: the autoencoder's latents z have roughly 1/scaling_factor the spread the diffusion
schedule assumes, so the U-Net sees ``scaling_factor * z``. ``to_diffusion_latents`` and
``from_diffusion_latents`` are the only places that multiply or divide by it; ``Codec`` uses them,
``AutoencoderKL`` never does (its encode/decode are diffusers' unscaled ones).

Architecture (as diffusers' AutoencoderKL with DownEncoderBlock2D / UpDecoderBlock2D):
  encoder: conv_in 3x3 -> per level: layers x ResBlock, Downsample (pad right/bottom by 1, 3x3
  stride 2) except at the last level -> mid ResBlock, single-head self-attention, ResBlock ->
  GroupNorm, SiLU, conv_out 3x3 to 2C moments -> quant_conv 1x1.
  decoder: post_quant_conv 1x1 -> conv_in 3x3 -> mid -> per level (deepest first): layers + 1 x
  ResBlock, Upsample (nearest x2, 3x3) except at level 0 -> GroupNorm, SiLU, conv_out 3x3.
All GroupNorms use eps 1e-6; ResBlocks carry no time embedding.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
from jax import Array

from ladder_trainer.models.unet import attend

GN_EPS = 1e-6
LOGVAR_RANGE = (-30.0, 20.0)  # as diffusers' DiagonalGaussianDistribution: keeps exp() finite


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """The fields of diffusers' AutoencoderKL config that SD v1.x VAEs use (hashable: one jitted
    codec per config)."""

    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    latent_channels: int = 4
    norm_num_groups: int = 32
    in_channels: int = 3
    out_channels: int = 3
    scaling_factor: float = 0.18215

    def __post_init__(self):
        object.__setattr__(self, "block_out_channels", tuple(int(c) for c in self.block_out_channels))

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)


SD_VAE = AutoencoderConfig()


def to_diffusion_latents(z: Array, config: AutoencoderConfig) -> Array:
    """Autoencoder latents -> the latents the U-Net is trained on and samples."""
    return z * config.scaling_factor


def from_diffusion_latents(latents: Array, config: AutoencoderConfig) -> Array:
    """The U-Net's latents -> what the decoder takes."""
    return latents / config.scaling_factor


@flax.struct.dataclass
class DiagonalGaussian:
    """q(z | x) = N(mean, exp(logvar)) per latent element; a pytree, so it crosses jit."""

    mean: Array
    logvar: Array

    @property
    def std(self) -> Array:
        return jnp.exp(0.5 * self.logvar)

    def sample(self, rng: Array) -> Array:
        return self.mean + self.std * jax.random.normal(rng, self.mean.shape, self.mean.dtype)

    def mode(self) -> Array:
        return self.mean

    def kl(self) -> Array:
        """KL(q || N(0, I)) per example, summed over H, W and C (as diffusers)."""
        terms = self.mean**2 + jnp.exp(self.logvar) - 1.0 - self.logvar
        return 0.5 * jnp.sum(terms, axis=(1, 2, 3))


def _gn(groups: int, name: str, kw: dict) -> nn.GroupNorm:
    # Two-pass variance: decoder activations reach the hundreds, where E[x^2] - E[x]^2 loses digits.
    return nn.GroupNorm(groups, epsilon=GN_EPS, use_fast_variance=False, name=name, **kw)


class VaeResBlock(nn.Module):
    out_channels: int
    norm_groups: int
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        h = nn.Conv(self.out_channels, (3, 3), padding=1, name="conv1", **kw)(
            nn.silu(_gn(self.norm_groups, "norm1", kw)(x)))
        h = nn.Conv(self.out_channels, (3, 3), padding=1, name="conv2", **kw)(
            nn.silu(_gn(self.norm_groups, "norm2", kw)(h)))
        if x.shape[-1] != self.out_channels:
            x = nn.Conv(self.out_channels, (1, 1), name="skip", **kw)(x)
        return x + h


class VaeAttention(nn.Module):
    """Single-head self-attention over all positions, with a residual (the mid block's)."""

    norm_groups: int
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        b, hgt, wid, ch = x.shape
        h = _gn(self.norm_groups, "group_norm", kw)(x).reshape(b, hgt * wid, 1, ch)
        q, k, v = (nn.Dense(ch, name=n, **kw)(h) for n in ("to_q", "to_k", "to_v"))
        out = attend(q, k, v).reshape(b, hgt * wid, ch)
        return x + nn.Dense(ch, name="to_out", **kw)(out).reshape(b, hgt, wid, ch)


def _mid(h: Array, groups: int, kw: dict) -> Array:
    ch = h.shape[-1]
    h = VaeResBlock(ch, groups, name="mid_res_0", **kw)(h)
    h = VaeAttention(groups, name="mid_attn", **kw)(h)
    return VaeResBlock(ch, groups, name="mid_res_1", **kw)(h)


class Encoder(nn.Module):
    config: AutoencoderConfig
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        cfg, kw = self.config, dict(dtype=self.dtype, param_dtype=self.param_dtype)
        levels = cfg.block_out_channels
        h = nn.Conv(levels[0], (3, 3), padding=1, name="conv_in", **kw)(x)
        for level, ch in enumerate(levels):
            for i in range(cfg.layers_per_block):
                h = VaeResBlock(ch, cfg.norm_num_groups, name=f"down_{level}_res_{i}", **kw)(h)
            if level < len(levels) - 1:
                # diffusers' Downsample2D(padding=0): zero-pad right and bottom only, then stride 2.
                h = nn.Conv(ch, (3, 3), strides=(2, 2), padding=((0, 1), (0, 1)),
                            name=f"down_{level}_sample", **kw)(h)
        h = _mid(h, cfg.norm_num_groups, kw)
        h = nn.silu(_gn(cfg.norm_num_groups, "norm_out", kw)(h))
        return nn.Conv(2 * cfg.latent_channels, (3, 3), padding=1, name="conv_out", **kw)(h)


class Decoder(nn.Module):
    config: AutoencoderConfig
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, z: Array) -> Array:
        cfg, kw = self.config, dict(dtype=self.dtype, param_dtype=self.param_dtype)
        levels = cfg.block_out_channels
        h = nn.Conv(levels[-1], (3, 3), padding=1, name="conv_in", **kw)(z)
        h = _mid(h, cfg.norm_num_groups, kw)
        for level in reversed(range(len(levels))):
            for i in range(cfg.layers_per_block + 1):
                h = VaeResBlock(levels[level], cfg.norm_num_groups, name=f"up_{level}_res_{i}", **kw)(h)
            if level > 0:
                h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
                h = nn.Conv(levels[level], (3, 3), padding=1, name=f"up_{level}_sample", **kw)(h)
        h = nn.silu(_gn(cfg.norm_num_groups, "norm_out", kw)(h))
        return nn.Conv(cfg.out_channels, (3, 3), padding=1, name="conv_out", **kw)(h)


class AutoencoderKL(nn.Module):
    """posterior = m.apply(v, images, method=m.encode); images = m.apply(v, z, method=m.decode).

    Inputs are cast to ``dtype`` (the compute dtype); outputs are float32.
    """

    config: AutoencoderConfig = SD_VAE
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def setup(self):
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        lat = self.config.latent_channels
        self.encoder = Encoder(self.config, **kw)
        self.quant_conv = nn.Conv(2 * lat, (1, 1), **kw)
        self.post_quant_conv = nn.Conv(lat, (1, 1), **kw)
        self.decoder = Decoder(self.config, **kw)

    def encode(self, images: Array) -> DiagonalGaussian:
        moments = self.quant_conv(self.encoder(images.astype(self.dtype))).astype(jnp.float32)
        mean, logvar = jnp.split(moments, 2, axis=-1)
        return DiagonalGaussian(mean, jnp.clip(logvar, *LOGVAR_RANGE))

    def decode(self, z: Array) -> Array:
        return self.decoder(self.post_quant_conv(z.astype(self.dtype))).astype(jnp.float32)

    def __call__(self, images: Array, rng: Array | None = None) -> tuple[Array, DiagonalGaussian]:
        posterior = self.encode(images)
        z = posterior.mean if rng is None else posterior.sample(rng)
        return self.decode(z), posterior


def _jnp_dtype(name) -> jnp.dtype:
    return jnp.dtype(str(getattr(name, "value", name)))


def build_autoencoder(config: AutoencoderConfig = SD_VAE, compute_dtype="float32",
                      param_dtype="float32") -> AutoencoderKL:
    return AutoencoderKL(config, dtype=_jnp_dtype(compute_dtype), param_dtype=_jnp_dtype(param_dtype))


def abstract_params(config: AutoencoderConfig = SD_VAE, param_dtype="float32"):
    """Parameter shapes and dtypes (eval_shape: nothing allocated, nothing compiled)."""
    size = config.downsample_factor
    images = jax.ShapeDtypeStruct((1, size, size, config.in_channels), jnp.float32)
    model = build_autoencoder(config, param_dtype=param_dtype)
    return jax.eval_shape(model.init, jax.random.key(0), images)["params"]


def param_count(config: AutoencoderConfig = SD_VAE) -> int:
    return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(abstract_params(config)))


def init_params(config: AutoencoderConfig, seed: int, param_dtype="float32"):
    """Fresh parameters with Flax's default initializers, drawn on the host (see
    ``ladder_trainer.models.host_init``: no XLA compile of the initializers)."""
    from ladder_trainer.models import host_init

    return jax.tree_util.tree_map(jnp.asarray, host_init(abstract_params(config, param_dtype), seed))


@dataclasses.dataclass(frozen=True)
class Codec:
    """Jitted image <-> diffusion-latent maps for one (config, compute dtype); XLA compiles each
    once per input shape. Batches sharded over a mesh stay sharded (every op is per example)."""

    config: AutoencoderConfig
    encode: Callable  # (params, images [B,H,W,3] in [-1,1], rng=None) -> latents [B,H/f,W/f,C]
    decode: Callable  # (params, latents) -> images [B,H,W,3], about [-1, 1]
    posterior: Callable  # (params, images) -> DiagonalGaussian in the autoencoder's own space


@functools.lru_cache(maxsize=16)
def codec(config: AutoencoderConfig = SD_VAE, compute_dtype: str = "float32") -> Codec:
    """The one Codec per (config, compute dtype) in this process, so repeated callers (every
    shard of ``ladder prepare``, every evaluated checkpoint) reuse the compiled functions."""
    model = build_autoencoder(config, compute_dtype)

    @jax.jit
    def posterior(params, images):
        return model.apply({"params": params}, images, method=AutoencoderKL.encode)

    @jax.jit
    def encode(params, images, rng=None):
        q = model.apply({"params": params}, images, method=AutoencoderKL.encode)
        return to_diffusion_latents(q.mean if rng is None else q.sample(rng), config)

    @jax.jit
    def decode(params, latents):
        z = from_diffusion_latents(latents.astype(jnp.float32), config)
        return model.apply({"params": params}, z, method=AutoencoderKL.decode)

    return Codec(config, encode, decode, posterior)
