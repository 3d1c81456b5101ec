"""The SD v1.5 U-Net, configured only by the ladder's settings (width c and the shared layout).

Flax **Linen**, not NNX: a Linen module is a frozen description and its parameters are a plain
pytree handed to ``apply``. That is what the rest of the trainer wants: ``jax.eval_shape`` of
``init`` counts parameters without allocating (so ``param_count`` works for the 5B model on a
laptop), ``train_step`` is a pure function of (state, batch, rng), parameters are sharded and
checkpointed as ordinary pytrees, and the evaluator restores a checkpoint without rebuilding any
stateful object.

The block order follows ``ladder_api.ladder._walk`` one for one (a test checks the parameter
counts agree exactly), so the analytic FLOP and memory figures describe the network trained here.

Layout (NHWC throughout):
  timestep -> sinusoidal(c) -> Dense(4c) -> SiLU -> Dense(4c)
  conv_in 3x3 -> per level: num_res_blocks x [ResBlock (+ SpatialTransformer at attention
  levels)], Downsample (3x3 stride 2) except after the last level -> mid Res, Attn, Res ->
  per level (reversed): (num_res_blocks + 1) x [ResBlock on concat(skip) (+ transformer)],
  Upsample (nearest x2 + 3x3) except at level 0 -> GroupNorm, SiLU, conv_out 3x3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from ladder_api.memory import QUERY_CHUNK  # attention queries per chunk above which `attend` chunks

GN_EPS = 1e-5
LN_EPS = 1e-5


def timestep_embedding(t: Array, dim: int, max_period: float = 10_000.0) -> Array:
    """Sinusoidal embedding of (possibly fractional) timesteps: [cos | sin], as SD's `flip_sin_to_cos`."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = t.astype(jnp.float32)[:, None] * freqs[None, :]
    emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)], axis=-1)
    if dim % 2:
        emb = jnp.pad(emb, ((0, 0), (0, 1)))
    return emb


class ResBlock(nn.Module):
    out_channels: int
    norm_groups: int
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, temb: Array) -> Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        h = nn.GroupNorm(self.norm_groups, epsilon=GN_EPS, name="norm1", **kw)(x)
        h = nn.Conv(self.out_channels, (3, 3), padding=1, name="conv1", **kw)(nn.silu(h))
        h = h + nn.Dense(self.out_channels, name="temb_proj", **kw)(nn.silu(temb))[:, None, None, :]
        h = nn.GroupNorm(self.norm_groups, epsilon=GN_EPS, name="norm2", **kw)(h)
        h = nn.Conv(self.out_channels, (3, 3), padding=1, name="conv2", **kw)(nn.silu(h))
        if x.shape[-1] != self.out_channels:
            x = nn.Conv(self.out_channels, (1, 1), name="skip", **kw)(x)
        return x + h


def _attend_dense(q, k, v):
    """softmax(q k^T / sqrt(d)) v, arranged for what XLA:CPU runs well (same math, float32
    scores). Three choices, each measured (bench/evaluator.md): heads are moved in front before
    the products, so both are plain batched matmuls over [B, H] rather than dots whose XLA:CPU
    fusion re-lays the [N, M] scores; the scale is applied to q ([N, D]) rather than to the
    scores ([N, M]), which also keeps XLA from materialising a broadcast constant of the
    scores' shape; and the softmax's division happens after the product with v, on [N, D],
    saving a full pass over the [N, M] matrix. At 32x32 latents level 0 has 1,024 tokens and
    (c = 64) 8-wide heads, where these passes, not FLOPs, are the cost."""
    scale = jnp.asarray(1.0 / math.sqrt(q.shape[-1]), q.dtype)
    qh, kh, vh = (jnp.swapaxes(a, 1, 2) for a in (q * scale, k, v))  # [B, H, N|M, D]
    scores = jnp.einsum("bhnd,bhmd->bhnm", qh, kh, preferred_element_type=jnp.float32)
    e = jnp.exp(scores - jax.lax.stop_gradient(scores.max(axis=-1, keepdims=True)))
    out = jnp.einsum("bhnm,bhmd->bhnd", e.astype(v.dtype), vh, preferred_element_type=jnp.float32)
    return jnp.swapaxes(out / e.sum(axis=-1, keepdims=True), 1, 2).astype(v.dtype)


def attend(q, k, v, query_chunk: int = QUERY_CHUNK):
    """softmax(q k^T / sqrt(d)) v on [B, N, H, D] inputs.

    Above `query_chunk` queries the queries are processed in chunks, each under jax.checkpoint:
    the [H, N, M] score matrix is never kept for the backward pass (it is recomputed per chunk),
    which is what lets 64x64 latents (4,096 tokens at level 0) train at useful batch sizes. The
    result is the same attention (memory-efficient attention, Rabe & Staats 2021).
    """
    b, n, h, d = q.shape
    if n <= query_chunk or n % query_chunk:
        return _attend_dense(q, k, v)
    chunks = q.reshape(b, n // query_chunk, query_chunk, h, d).swapaxes(0, 1)
    out = jax.lax.map(jax.checkpoint(lambda qc: _attend_dense(qc, k, v)), chunks)
    return out.swapaxes(0, 1).reshape(b, n, h, d)


class Attention(nn.Module):
    """Multi-head attention with bias-free q/k/v (as SD) and a biased output projection."""

    channels: int
    num_heads: int
    query_chunk: int = QUERY_CHUNK
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, context: Array | None = None) -> Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        ctx = x if context is None else context
        b, n, _ = x.shape
        m = ctx.shape[1]
        head_dim = self.channels // self.num_heads
        q = nn.Dense(self.channels, use_bias=False, name="to_q", **kw)(x)
        k = nn.Dense(self.channels, use_bias=False, name="to_k", **kw)(ctx)
        v = nn.Dense(self.channels, use_bias=False, name="to_v", **kw)(ctx)
        q = q.reshape(b, n, self.num_heads, head_dim)
        k = k.reshape(b, m, self.num_heads, head_dim)
        v = v.reshape(b, m, self.num_heads, head_dim)
        out = attend(q, k, v, self.query_chunk).reshape(b, n, self.channels)
        return nn.Dense(self.channels, name="to_out", **kw)(out)


class BasicTransformerBlock(nn.Module):
    channels: int
    num_heads: int
    query_chunk: int = QUERY_CHUNK
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, context: Array) -> Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        attn = dict(channels=self.channels, num_heads=self.num_heads, query_chunk=self.query_chunk, **kw)
        x = x + Attention(name="attn1", **attn)(nn.LayerNorm(LN_EPS, name="norm1", **kw)(x))
        x = x + Attention(name="attn2", **attn)(nn.LayerNorm(LN_EPS, name="norm2", **kw)(x), context)
        h = nn.LayerNorm(LN_EPS, name="norm3", **kw)(x)
        h, gate = jnp.split(nn.Dense(8 * self.channels, name="ff_in", **kw)(h), 2, axis=-1)
        h = h * nn.gelu(gate, approximate=False)  # GEGLU
        return x + nn.Dense(self.channels, name="ff_out", **kw)(h)


class SpatialTransformer(nn.Module):
    channels: int
    num_heads: int
    norm_groups: int
    depth: int = 1
    query_chunk: int = QUERY_CHUNK
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, context: Array) -> Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        b, hgt, wid, ch = x.shape
        h = nn.GroupNorm(self.norm_groups, epsilon=1e-6, name="norm", **kw)(x)
        h = nn.Conv(ch, (1, 1), name="proj_in", **kw)(h).reshape(b, hgt * wid, ch)
        for i in range(self.depth):
            block = BasicTransformerBlock(ch, self.num_heads, self.query_chunk, name=f"block_{i}", **kw)
            h = block(h, context)
        h = nn.Conv(ch, (1, 1), name="proj_out", **kw)(h.reshape(b, hgt, wid, ch))
        return x + h


class UNet(nn.Module):
    """eps (or v) = UNet().apply({'params': p}, x[B,H,W,C], t[B], context[B,T,D])."""

    base_channels: int
    channel_mult: Sequence[int] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attention_levels: Sequence[int] = (0, 1, 2)
    num_heads: int = 8
    transformer_depth: int = 1
    norm_groups: int = 32
    out_channels: int = 4
    remat: bool = False  # recompute each block's internals in the backward pass (memory for FLOPs)
    query_chunk: int = QUERY_CHUNK
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, t: Array, context: Array) -> Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        c = self.base_channels
        x = x.astype(self.dtype)
        context = context.astype(self.dtype)
        temb = timestep_embedding(t, c).astype(self.dtype)
        temb = nn.Dense(4 * c, name="time_embed_0", **kw)(temb)
        temb = nn.Dense(4 * c, name="time_embed_1", **kw)(nn.silu(temb))

        res_cls = nn.remat(ResBlock) if self.remat else ResBlock
        attn_cls = nn.remat(SpatialTransformer) if self.remat else SpatialTransformer

        def res(h, ch, name):
            return res_cls(ch, self.norm_groups, name=name, **kw)(h, temb)

        def attn(h, name):
            return attn_cls(
                h.shape[-1], self.num_heads, self.norm_groups, self.transformer_depth, self.query_chunk,
                name=name, **kw,
            )(h, context)

        levels = [c * m for m in self.channel_mult]
        h = nn.Conv(c, (3, 3), padding=1, name="conv_in", **kw)(x)
        skips = [h]
        for level, ch in enumerate(levels):
            for i in range(self.num_res_blocks):
                h = res(h, ch, f"down_{level}_res_{i}")
                if level in self.attention_levels:
                    h = attn(h, f"down_{level}_attn_{i}")
                skips.append(h)
            if level < len(levels) - 1:
                h = nn.Conv(ch, (3, 3), strides=(2, 2), padding=1, name=f"down_{level}_sample", **kw)(h)
                skips.append(h)

        h = res(h, h.shape[-1], "mid_res_0")
        h = attn(h, "mid_attn")
        h = res(h, h.shape[-1], "mid_res_1")

        for level in reversed(range(len(levels))):
            ch = levels[level]
            for i in range(self.num_res_blocks + 1):
                h = res(jnp.concatenate([h, skips.pop()], axis=-1), ch, f"up_{level}_res_{i}")
                if level in self.attention_levels:
                    h = attn(h, f"up_{level}_attn_{i}")
            if level > 0:
                h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)
                h = nn.Conv(ch, (3, 3), padding=1, name=f"up_{level}_sample", **kw)(h)

        h = nn.silu(nn.GroupNorm(self.norm_groups, epsilon=GN_EPS, name="norm_out", **kw)(h))
        h = nn.Conv(self.out_channels, (3, 3), padding=1, name="conv_out", **kw)(h)
        return h.astype(jnp.float32)
