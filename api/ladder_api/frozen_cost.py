"""Analytic forward FLOPs of the frozen networks an evaluation runs per image: the autoencoder's
decoder, Inception-v3 (FID) and a CLIP vision tower (CLIP score).

The paper leaves them out of model sizes and sampling costs, and rightly so for comparing sizes;
but a study's bill pays for them. At the paper's protocol the SD decoder costs ~2.5 TFLOPs per
512x512 image, more than three c = 320 U-Net forwards, and more than a whole 4-step sample of the
39M model: at small budgets decoding and scoring dominate what evaluation costs. Counted here as
2 x multiply-accumulates of convolutions, matmuls and attention (norms and activations are a few
percent and left out), checked against XLA's own count of the real modules in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass


def _conv(h: int, w: int, cin: int, cout: int, k: int) -> int:
    return h * w * k * k * cin * cout


def _resblock(h: int, w: int, cin: int, cout: int) -> int:
    macs = _conv(h, w, cin, cout, 3) + _conv(h, w, cout, cout, 3)
    if cin != cout:
        macs += _conv(h, w, cin, cout, 1)
    return macs


def _single_head_attention(tokens: int, channels: int) -> int:
    """q, k, v and output projections plus the scores and their weighted sum."""
    return 4 * tokens * channels * channels + 2 * tokens * tokens * channels


@dataclass(frozen=True)
class DecoderShape:
    """The fields of an SD AutoencoderKL (diffusers' config) that fix its decoder's cost."""

    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    latent_channels: int = 4
    out_channels: int = 3


SD_DECODER = DecoderShape()


def decoder_flops(shape: DecoderShape, latent_size: int) -> float:
    """One image decoded from a latent_size x latent_size latent (the image side is latent_size x
    2^(levels-1)): post_quant_conv, conv_in, mid (res, attention, res), per level from the deepest
    layers+1 res-blocks and an upsampling conv, conv_out."""
    chans = list(reversed(shape.block_out_channels))
    side = latent_size
    top = chans[0]
    macs = _conv(side, side, shape.latent_channels, shape.latent_channels, 1)
    macs += _conv(side, side, shape.latent_channels, top, 3)
    macs += 2 * _resblock(side, side, top, top) + _single_head_attention(side * side, top)
    cin = top
    for level, cout in enumerate(chans):
        for _ in range(shape.layers_per_block + 1):
            macs += _resblock(side, side, cin, cout)
            cin = cout
        if level < len(chans) - 1:
            side *= 2
            macs += _conv(side, side, cout, cout, 3)
    macs += _conv(side, side, cin, shape.out_channels, 3)
    return 2.0 * macs


# Inception-v3 at 299x299 (clean-fid's feature network): 5.71 G multiply-accumulates, the
# figure torchvision and the Inception paper give for the 2015-12-05 graph.
INCEPTION_V3_FLOPS = 2 * 5.71e9


@dataclass(frozen=True)
class VisionTowerShape:
    """A ViT image tower (CLIP's): patch size, image side, width, layers, MLP ratio."""

    image_size: int = 224
    patch_size: int = 14
    width: int = 1024
    layers: int = 24
    mlp_ratio: float = 4.0
    embed_dim: int = 768


CLIP_VIT_L14 = VisionTowerShape()
CLIP_VIT_B32 = VisionTowerShape(patch_size=32, width=768, layers=12, embed_dim=512)


def vision_tower_flops(shape: VisionTowerShape) -> float:
    """Patch embedding, per layer self-attention (projections, scores) and MLP, final projection."""
    grid = shape.image_size // shape.patch_size
    tokens = grid * grid + 1
    d = shape.width
    macs = grid * grid * (3 * shape.patch_size**2) * d
    per_layer = 4 * tokens * d * d + 2 * tokens * tokens * d + 2 * tokens * d * int(shape.mlp_ratio * d)
    macs += shape.layers * per_layer + d * shape.embed_dim
    return 2.0 * macs
