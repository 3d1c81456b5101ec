"""An open_clip CLIP model (torch, as open_clip built it) -> clip_jax.Config and numpy parameters.

The converter inspects modules, not config fields, and raises clip_jax.NotPortedError naming the
first part it cannot express exactly; the caller then keeps the torch scorer.
"""

from __future__ import annotations

import numpy as np
import torch
from open_clip.model import CLIP
from open_clip.transformer import LayerScale, QuickGELU, ResidualAttentionBlock, VisionTransformer

from ladder_evaluator.metrics.clip_jax import Config, NotPortedError


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).cpu().numpy()


def _ln(m: torch.nn.Module) -> dict:
    if not isinstance(m, torch.nn.LayerNorm) or not m.elementwise_affine or m.bias is None:
        raise NotPortedError(f"normalisation layer {type(m).__name__} (only affine LayerNorm)")
    return {"scale": _np(m.weight), "bias": _np(m.bias), "eps": np.float32(m.eps)}


def _act(m: torch.nn.Module) -> str:
    if isinstance(m, QuickGELU):
        return "quick_gelu"
    if isinstance(m, torch.nn.GELU):
        return "gelu_tanh" if m.approximate == "tanh" else "gelu"
    raise NotPortedError(f"activation {type(m).__name__}")


def _ls(m: torch.nn.Module):
    if isinstance(m, torch.nn.Identity):
        return np.float32(1.0)
    if isinstance(m, LayerScale):
        return _np(m.gamma)
    raise NotPortedError(f"layer scale {type(m).__name__}")


def _block(blk: torch.nn.Module) -> tuple[dict, int, str]:
    if type(blk) is not ResidualAttentionBlock or hasattr(blk, "ln_1_kv"):
        raise NotPortedError(f"attention block {type(blk).__name__} (only open_clip's default block)")
    attn = blk.attn
    packed = attn._qkv_same_embed_dim and attn.in_proj_bias is not None
    if not packed or attn.bias_k is not None or attn.add_zero_attn:
        raise NotPortedError("a MultiheadAttention other than packed q/k/v projections with bias")
    p = {
        "ln_1": _ln(blk.ln_1), "ln_2": _ln(blk.ln_2), "ls_1": _ls(blk.ls_1), "ls_2": _ls(blk.ls_2),
        "in_w": _np(attn.in_proj_weight).T, "in_b": _np(attn.in_proj_bias),
        "out_w": _np(attn.out_proj.weight).T, "out_b": _np(attn.out_proj.bias),
        "fc_w": _np(blk.mlp.c_fc.weight).T, "fc_b": _np(blk.mlp.c_fc.bias),
        "proj_w": _np(blk.mlp.c_proj.weight).T, "proj_b": _np(blk.mlp.c_proj.bias),
    }
    return p, attn.num_heads, _act(blk.mlp.gelu)


def _blocks(transformer: torch.nn.Module) -> tuple[list[dict], int, str]:
    if not getattr(transformer, "batch_first", False):
        raise NotPortedError("a sequence-first transformer")
    converted = [_block(b) for b in transformer.resblocks]
    heads, acts = {h for _, h, _ in converted}, {a for _, _, a in converted}
    if len(heads) != 1 or len(acts) != 1:
        raise NotPortedError("blocks with different head counts or activations")
    return [p for p, _, _ in converted], heads.pop(), acts.pop()


def _vision(v: torch.nn.Module) -> tuple[dict, dict]:
    if not isinstance(v, VisionTransformer):
        raise NotPortedError(f"image tower {type(v).__name__} (only open_clip's VisionTransformer)")
    if v.attn_pool is not None or v.pool_type not in ("tok", "avg") or v.proj is None:
        raise NotPortedError("attentional pooling, pool type none or no projection in the image tower")
    conv = v.conv1
    if conv.bias is not None or conv.kernel_size != conv.stride or conv.kernel_size[0] != conv.kernel_size[1]:
        raise NotPortedError("a patch embedding other than square, non-overlapping, without bias")
    blocks, heads, act = _blocks(v.transformer)
    p = {
        "patch": _np(conv.weight).transpose(2, 3, 1, 0), "cls": _np(v.class_embedding),
        "pos": _np(v.positional_embedding), "blocks": blocks, "ln_post": _ln(v.ln_post), "proj": _np(v.proj),
    }
    ln_pre = not isinstance(v.ln_pre, torch.nn.Identity)
    if ln_pre:
        p["ln_pre"] = _ln(v.ln_pre)
    cfg = dict(vision_heads=heads, act=act, patch=conv.kernel_size[0], pool=v.pool_type, ln_pre=ln_pre,
               ln_after_pool=bool(v.final_ln_after_pool))
    return p, cfg


def _text(model: CLIP) -> tuple[dict, dict]:
    blocks, heads, act = _blocks(model.transformer)
    n = model.positional_embedding.shape[0]
    mask = model.attn_mask
    causal = mask is not None
    if causal and not torch.equal(mask, torch.full((n, n), float("-inf")).triu(1)):
        raise NotPortedError("a text attention mask other than the causal one")
    p = {"tok": _np(model.token_embedding.weight), "pos": _np(model.positional_embedding), "blocks": blocks,
         "ln_final": _ln(model.ln_final)}
    proj = model.text_projection
    if proj is None:
        kind = "none"
    elif isinstance(proj, torch.nn.Linear):
        kind, p["proj"] = "linear", _np(proj.weight).T
        p["proj_b"] = _np(proj.bias) if proj.bias is not None else np.zeros(proj.out_features, np.float32)
    else:
        kind, p["proj"] = "param", _np(proj)
    pool = model.text_pool_type
    if pool not in ("argmax", "eos", "first", "last"):
        raise NotPortedError(f"text pool type {pool!r}")
    eos_id = int(getattr(model, "text_eos_id", 0) or 0)
    cfg = dict(text_heads=heads, text_act=act, text_pool=pool, eos_id=eos_id, causal=causal, text_proj=kind)
    return p, cfg


def convert(model: torch.nn.Module) -> tuple[Config, dict]:
    """(static config, {"visual": ..., "text": ...} numpy parameters) of an open_clip CLIP."""
    if type(model) is not CLIP:
        raise NotPortedError(f"model class {type(model).__name__} (only open_clip.model.CLIP)")
    vp, vcfg = _vision(model.visual)
    tp, tcfg = _text(model)
    if tcfg.pop("text_act") != vcfg["act"]:
        raise NotPortedError("different activations in the image and text towers")
    return Config(**vcfg, **tcfg), {"visual": vp, "text": tp}
