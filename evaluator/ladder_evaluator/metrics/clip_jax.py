"""open_clip's ViT image tower and text tower in JAX, for CLIP score on the accelerator.

Built from the torch model open_clip constructs (clip_score.load), not from the config JSON, so
the port follows what open_clip actually built: the converter reads the modules (GELU or
QuickGELU, LayerNorm eps, pooling, LayerScale, causal mask, projection) and refuses, with the
reason, any model it does not express exactly (ResNet or timm towers, attentional pooling,
custom attention blocks, Hugging Face text towers). Tokenization stays open_clip's tokenizer on
the host; image preprocessing is `clip_preprocess`.

Attention is written out (softmax of q k^T / sqrt(head_dim) plus the additive causal mask), in
float32 with HIGHEST matmul precision, batch-first [B, L, D] like open_clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

PRECISION = jax.lax.Precision.HIGHEST


class NotPortedError(ValueError):
    """The open_clip model has a part this port does not express; use the torch backend."""


def _mm(x, w):
    return jnp.matmul(x, w, precision=PRECISION)


def layer_norm(p, x):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + p["eps"]) * p["scale"] + p["bias"]


def _act(x, kind: str):
    if kind == "quick_gelu":
        return x * jax.nn.sigmoid(1.702 * x)
    return jax.nn.gelu(x, approximate=kind == "gelu_tanh")


def attention(p, x, heads: int, mask):
    b, n, d = x.shape
    q, k, v = jnp.split(_mm(x, p["in_w"]) + p["in_b"], 3, axis=-1)
    q, k, v = (t.reshape(b, n, heads, d // heads).transpose(0, 2, 1, 3) for t in (q, k, v))
    logits = jnp.einsum("bhqd,bhkd->bhqk", q, k, precision=PRECISION) / math.sqrt(d // heads)
    if mask is not None:
        logits = logits + mask
    out = jnp.einsum("bhqk,bhkd->bhqd", jax.nn.softmax(logits, axis=-1), v, precision=PRECISION)
    return _mm(out.transpose(0, 2, 1, 3).reshape(b, n, d), p["out_w"]) + p["out_b"]


def block(p, x, heads: int, act: str, mask):
    """open_clip's ResidualAttentionBlock (pre-norm, optional LayerScale)."""
    x = x + p["ls_1"] * attention(p, layer_norm(p["ln_1"], x), heads, mask)
    h = _act(_mm(layer_norm(p["ln_2"], x), p["fc_w"]) + p["fc_b"], act)
    return x + p["ls_2"] * (_mm(h, p["proj_w"]) + p["proj_b"])


@dataclass(frozen=True)
class Config:
    """What open_clip built, as far as the forward needs it (static under jit)."""

    vision_heads: int
    text_heads: int
    act: str  # gelu, gelu_tanh or quick_gelu
    patch: int
    pool: str  # tok or avg
    ln_pre: bool
    ln_after_pool: bool
    text_pool: str  # argmax, eos, first or last
    eos_id: int
    causal: bool
    text_proj: str  # param, linear or none


def encode_image(cfg: Config, p, pixels):
    """Preprocessed images [B, S, S, 3] -> image embeddings [B, embed_dim] (not normalised)."""
    x = jax.lax.conv_general_dilated(
        pixels, p["patch"], (cfg.patch, cfg.patch), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=PRECISION,
    )
    b, width = x.shape[0], x.shape[-1]
    x = x.reshape(b, -1, width)  # row-major patches, as open_clip's reshape + permute
    x = jnp.concatenate([jnp.broadcast_to(p["cls"], (b, 1, width)), x], axis=1) + p["pos"]
    if cfg.ln_pre:
        x = layer_norm(p["ln_pre"], x)
    for bp in p["blocks"]:
        x = block(bp, x, cfg.vision_heads, cfg.act, None)
    if not cfg.ln_after_pool:
        x = layer_norm(p["ln_post"], x)
    pooled = x[:, 0] if cfg.pool == "tok" else jnp.mean(x[:, 1:], axis=1)
    if cfg.ln_after_pool:
        pooled = layer_norm(p["ln_post"], pooled)
    return _mm(pooled, p["proj"])


def encode_text(cfg: Config, p, tokens):
    """Token ids [B, L] (open_clip's tokenizer) -> text embeddings [B, embed_dim]."""
    b, n = tokens.shape
    x = p["tok"][tokens] + p["pos"]
    mask = jnp.triu(jnp.full((n, n), -jnp.inf, jnp.float32), k=1) if cfg.causal else None
    for bp in p["blocks"]:
        x = block(bp, x, cfg.text_heads, cfg.act, mask)
    x = layer_norm(p["ln_final"], x)
    if cfg.text_pool == "argmax":  # the end-of-text token has the largest id
        idx = jnp.argmax(tokens, axis=-1)
    elif cfg.text_pool == "eos":
        idx = jnp.argmax(tokens == cfg.eos_id, axis=-1)
    else:
        idx = jnp.full((b,), 0 if cfg.text_pool == "first" else n - 1)
    pooled = x[jnp.arange(b), idx]
    if cfg.text_proj == "param":
        return _mm(pooled, p["proj"])
    if cfg.text_proj == "linear":
        return _mm(pooled, p["proj"]) + p["proj_b"]
    return pooled
