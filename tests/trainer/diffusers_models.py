"""diffusers' torch models, randomly initialised, as the reference the ladder's Flax modules and
weight loaders are checked against (test dependencies; nothing is downloaded).

Every parameter is perturbed after init: torch starts norms at weight 1 / bias 0, which would hide
a norm scale or bias mapped to the wrong place.
"""

from __future__ import annotations

import numpy as np

# diffusers and torch are dev dependencies: the parity tests must run, never skip quietly.
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

SMALL_VAE = dict(block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4)
SD_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
              norm_num_groups=32)

# Two levels, attention only at the deeper one (so diffusers' reversed up_blocks numbering shows),
# two transformer layers per block, a 12-wide context.
SMALL_UNET = dict(
    block_out_channels=(16, 32), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1, attention_head_dim=4,
    norm_num_groups=8, cross_attention_dim=12, transformer_layers_per_block=2,
)
SD15_UNET = dict(
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    layers_per_block=2, attention_head_dim=8, norm_num_groups=32, cross_attention_dim=768,
)


def vae(seed: int = 0, **config) -> AutoencoderKL:
    n = len(config["block_out_channels"])
    torch.manual_seed(seed)
    model = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * n,
                          up_block_types=("UpDecoderBlock2D",) * n, **config)
    return perturbed(model, seed)


def unet(seed: int = 0, **config) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return perturbed(UNet2DConditionModel(**config), seed)


def perturbed(model, seed: int, scale: float = 0.1):
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return model.eval()


def on_meta(cls, **config):
    """A full-size model built on the meta device: its config and state-dict shapes, no memory."""
    with torch.device("meta"):
        return cls(**config)


def shapes_on_meta(cls, **config) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in on_meta(cls, **config).state_dict().items()}


def state_dict(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)


def assert_close(actual, expected, rtol: float = 1e-4):
    """Equal to rtol relative to the reference's largest magnitude (elementwise relative error is
    meaningless for values that cross zero)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err = float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))
    assert err < rtol, f"max error {err:.2e} of the reference's scale (allowed {rtol:.0e})"
