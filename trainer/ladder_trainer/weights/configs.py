"""diffusers ``config.json`` <-> the ladder's model configurations (pure).

Only the features SD v1.x uses are supported; a config that asks for anything else (another block
type, a class embedding, a different timestep embedding, ...) is refused naming the field, rather
than loaded into a network that would compute something else.
"""

from __future__ import annotations

from ladder_api.errors import UserError
from ladder_api.ladder import UNetShape
from ladder_trainer.models.autoencoder import AutoencoderConfig

# Fields whose value must be the default, because the ladder's modules implement only that one.
VAE_FIXED = {
    "act_fn": "silu", "use_quant_conv": True, "use_post_quant_conv": True,
    "mid_block_add_attention": True, "shift_factor": None, "latents_mean": None, "latents_std": None,
}
UNET_FIXED = {
    "act_fn": "silu", "center_input_sample": False, "flip_sin_to_cos": True, "freq_shift": 0,
    "downsample_padding": 1, "mid_block_scale_factor": 1, "norm_eps": 1e-5,
    "mid_block_type": "UNetMidBlock2DCrossAttn", "only_cross_attention": False,
    "dual_cross_attention": False, "class_embed_type": None, "addition_embed_type": None,
    "num_class_embeds": None, "resnet_time_scale_shift": "default", "resnet_skip_time_act": False,
    "resnet_out_scale_factor": 1.0, "time_embedding_type": "positional", "time_embedding_dim": None,
    "time_embedding_act_fn": None, "timestep_post_act": None, "time_cond_proj_dim": None,
    "conv_in_kernel": 3, "conv_out_kernel": 3, "encoder_hid_dim": None, "attention_type": "default",
    "cross_attention_norm": None, "projection_class_embeddings_input_dim": None,
    "class_embeddings_concat": False, "reverse_transformer_layers_per_block": None,
    "mid_block_only_cross_attention": None, "addition_time_embed_dim": None,
}
VAE_CLASS, UNET_CLASS = "AutoencoderKL", "UNet2DConditionModel"


def _check(cfg: dict, source: str, cls: str, fixed: dict) -> None:
    found = cfg.get("_class_name", cls)
    if found != cls:
        raise UserError(f"{source}: _class_name is {found!r}, expected {cls!r}: point at the {cls} folder")
    bad = [f"{k} = {cfg[k]!r} (supported: {v!r})"
           for k, v in fixed.items() if k in cfg and not _same(cfg[k], v)]
    if bad:
        raise UserError(f"{source}: the ladder's {cls} does not implement " + "; ".join(bad))


def _same(value, default) -> bool:
    """Equal to the default, or a per-block list of it (diffusers accepts both)."""
    if isinstance(value, list | tuple):
        return all(v == default for v in value)
    return value == default


def _uniform(value, n: int, field: str, source: str) -> int:
    values = list(value) if isinstance(value, list | tuple) else [value] * n
    if len(set(values)) != 1:
        raise UserError(f"{source}: {field} = {values} varies per block; the ladder's U-Net uses one value")
    return int(values[0])


def autoencoder_from_diffusers(cfg: dict, source: str) -> AutoencoderConfig:
    _check(cfg, source, VAE_CLASS, VAE_FIXED)
    widths = tuple(cfg.get("block_out_channels", (64,)))
    for field, kind in (("down_block_types", "DownEncoderBlock2D"), ("up_block_types", "UpDecoderBlock2D")):
        types = list(cfg.get(field, [kind] * len(widths)))
        if types != [kind] * len(widths):
            raise UserError(f"{source}: {field} = {types}; supported: {len(widths)} x {kind!r}")
    return AutoencoderConfig(
        block_out_channels=widths,
        layers_per_block=int(cfg.get("layers_per_block", 1)),
        latent_channels=int(cfg.get("latent_channels", 4)),
        norm_num_groups=int(cfg.get("norm_num_groups", 32)),
        in_channels=int(cfg.get("in_channels", 3)),
        out_channels=int(cfg.get("out_channels", 3)),
        scaling_factor=float(cfg.get("scaling_factor") or 0.18215),
    )


def autoencoder_to_diffusers(config: AutoencoderConfig) -> dict:
    n = len(config.block_out_channels)
    return {
        "_class_name": VAE_CLASS,
        "in_channels": config.in_channels,
        "out_channels": config.out_channels,
        "down_block_types": ["DownEncoderBlock2D"] * n,
        "up_block_types": ["UpDecoderBlock2D"] * n,
        "block_out_channels": list(config.block_out_channels),
        "layers_per_block": config.layers_per_block,
        "act_fn": "silu",
        "latent_channels": config.latent_channels,
        "norm_num_groups": config.norm_num_groups,
        "scaling_factor": config.scaling_factor,
    }


def _attention_levels(cfg: dict, n: int, source: str) -> tuple[int, ...]:
    down = list(cfg.get("down_block_types", []))
    up = list(cfg.get("up_block_types", []))
    allowed = {"CrossAttnDownBlock2D", "DownBlock2D"}
    if len(down) != n or len(up) != n or not set(down) <= allowed:
        raise UserError(f"{source}: down_block_types {down} / up_block_types {up}: expected {n} of "
                        f"{sorted(allowed)} and their mirror image")
    levels = tuple(i for i, t in enumerate(down) if t == "CrossAttnDownBlock2D")
    mirror = ["CrossAttnUpBlock2D" if n - 1 - k in levels else "UpBlock2D" for k in range(n)]
    if up != mirror:
        raise UserError(f"{source}: up_block_types {up} must mirror down_block_types {down}: {mirror}")
    return levels


def unet_from_diffusers(cfg: dict, source: str) -> UNetShape:
    _check(cfg, source, UNET_CLASS, UNET_FIXED)
    widths = [int(c) for c in cfg["block_out_channels"]]
    base = widths[0]
    if any(w % base for w in widths):
        raise UserError(f"{source}: block_out_channels {widths} are not multiples of the first")
    n = len(widths)
    # diffusers reads attention_head_dim as the number of heads when num_attention_heads is unset.
    heads_field = "num_attention_heads" if cfg.get("num_attention_heads") else "attention_head_dim"
    heads = cfg.get(heads_field, 8)
    shape = UNetShape(
        base_channels=base,
        context_dim=int(cfg["cross_attention_dim"]),
        channel_mult=tuple(w // base for w in widths),
        num_res_blocks=_uniform(cfg.get("layers_per_block", 2), n, "layers_per_block", source),
        attention_levels=_attention_levels(cfg, n, source),
        num_heads=_uniform(heads, n, heads_field, source),
        in_channels=int(cfg.get("in_channels", 4)),
        out_channels=int(cfg.get("out_channels", 4)),
        norm_groups=int(cfg.get("norm_num_groups", 32)),
        transformer_depth=_uniform(cfg.get("transformer_layers_per_block", 1), n,
                                   "transformer_layers_per_block", source),
    )
    bad = [w for w in widths if w % shape.num_heads]
    if bad:
        raise UserError(f"{source}: {shape.num_heads} heads do not divide block_out_channels {bad}")
    return shape


def unet_to_diffusers(shape) -> dict:
    """SD v1.x's UNet2DConditionModel config for a ladder U-Net (ModelConfig or UNetShape)."""
    levels = [shape.base_channels * m for m in shape.channel_mult]
    n, attn = len(levels), set(shape.attention_levels)
    latent = getattr(shape, "latent_channels", None)
    return {
        "_class_name": UNET_CLASS,
        "in_channels": latent or shape.in_channels,
        "out_channels": latent or shape.out_channels,
        "block_out_channels": levels,
        "down_block_types": ["CrossAttnDownBlock2D" if i in attn else "DownBlock2D" for i in range(n)],
        "up_block_types": ["CrossAttnUpBlock2D" if n - 1 - k in attn else "UpBlock2D" for k in range(n)],
        "layers_per_block": shape.num_res_blocks,
        "attention_head_dim": shape.num_heads,  # SD 1.x's meaning: the number of heads
        "transformer_layers_per_block": shape.transformer_depth,
        "cross_attention_dim": shape.context_dim,
        "norm_num_groups": shape.norm_groups,
        "use_linear_projection": False,
        **{k: v for k, v in UNET_FIXED.items() if k in ("act_fn", "flip_sin_to_cos", "freq_shift",
                                                          "downsample_padding", "norm_eps")},
    }
