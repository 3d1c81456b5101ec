"""Parameter names: the ladder's Flax paths <-> diffusers' state-dict keys.

One translation serves both models, because the Flax modules (models/unet.py, models/autoencoder.py)
name their blocks the same way: ``down_{level}_res_{i}``, ``down_{level}_attn_{i}``,
``down_{level}_sample``, ``mid_res_{k}``, ``mid_attn``, ``up_{level}_res_{i}``, ... The one
structural difference is the order of the up path: the ladder numbers it by resolution level (as
the down path), diffusers numbers ``up_blocks`` from the deepest level, so ``up_{level}`` is
``up_blocks.{levels - 1 - level}``.
"""

from __future__ import annotations

import re

# A whole Flax path segment -> diffusers' dotted key segment ({} parts come from the regex groups).
_BLOCKS = (
    (re.compile(r"down_(\d+)_res_(\d+)"), lambda m, n: f"down_blocks.{m[1]}.resnets.{m[2]}"),
    (re.compile(r"down_(\d+)_attn_(\d+)"), lambda m, n: f"down_blocks.{m[1]}.attentions.{m[2]}"),
    (re.compile(r"down_(\d+)_sample"), lambda m, n: f"down_blocks.{m[1]}.downsamplers.0.conv"),
    (re.compile(r"up_(\d+)_res_(\d+)"), lambda m, n: f"up_blocks.{n - 1 - int(m[1])}.resnets.{m[2]}"),
    (re.compile(r"up_(\d+)_attn_(\d+)"), lambda m, n: f"up_blocks.{n - 1 - int(m[1])}.attentions.{m[2]}"),
    (re.compile(r"up_(\d+)_sample"), lambda m, n: f"up_blocks.{n - 1 - int(m[1])}.upsamplers.0.conv"),
    (re.compile(r"mid_res_(\d+)"), lambda m, n: f"mid_block.resnets.{m[1]}"),
    (re.compile(r"mid_attn"), lambda m, n: "mid_block.attentions.0"),
    (re.compile(r"block_(\d+)"), lambda m, n: f"transformer_blocks.{m[1]}"),
)

_RENAMED = {
    "time_embed_0": "time_embedding.linear_1",
    "time_embed_1": "time_embedding.linear_2",
    "temb_proj": "time_emb_proj",
    "skip": "conv_shortcut",
    "norm_out": "conv_norm_out",
    "to_out": "to_out.0",
    "ff_in": "ff.net.0.proj",
    "ff_out": "ff.net.2",
}

# Flax's leaf names: kernels and norm scales are torch's `weight`.
_LEAVES = {"kernel": "weight", "scale": "weight", "bias": "bias"}

# Keys older diffusers releases wrote for the VAE's mid-block attention (sd-vae-ft-mse's file has
# them); diffusers renames them on load, and so do we.
LEGACY_ATTENTION = {".query.": ".to_q.", ".key.": ".to_k.", ".value.": ".to_v.", ".proj_attn.": ".to_out.0."}


def _segment(seg: str, levels: int) -> str:
    for pattern, render in _BLOCKS:
        m = pattern.fullmatch(seg)
        if m:
            return render(m, levels)
    return _RENAMED.get(seg, seg)


def diffusers_key(path: tuple[str, ...], levels: int) -> str:
    """('up_3_res_0', 'conv1', 'kernel') with 4 levels -> 'up_blocks.0.resnets.0.conv1.weight'."""
    *modules, leaf = path
    if leaf not in _LEAVES:
        raise ValueError(f"no diffusers name for Flax leaf {'/'.join(path)}")
    return ".".join([_segment(s, levels) for s in modules] + [_LEAVES[leaf]])


def modernize(key: str) -> str:
    """A legacy attention key (``...attentions.0.query.weight``) -> today's (``...to_q.weight``)."""
    for old, new in LEGACY_ATTENTION.items():
        if old in key:
            return key.replace(old, new)
    return key
