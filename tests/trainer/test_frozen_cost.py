"""The analytic decoder FLOPs (ladder_api.frozen_cost) against XLA's count of the real module.

XLA's cost analysis counts only the window taps that fall inside the image, so its count is a
little lower at small sides (the border); at the 16x16 latent used here the two agree within 3%.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

from ladder_api.frozen_cost import SD_DECODER, DecoderShape, decoder_flops
from ladder_trainer.models import autoencoder as ae


def _xla_decoder_flops(cfg: ae.AutoencoderConfig, latent: int) -> float:
    model = ae.AutoencoderKL(cfg)
    side = latent * cfg.downsample_factor
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, side, side, 3))))["params"]
    z = jax.ShapeDtypeStruct((1, latent, latent, cfg.latent_channels), jnp.float32)
    decode = jax.jit(lambda p, z: model.apply({"params": p}, z, method=ae.AutoencoderKL.decode))
    cost = decode.lower(params, z).compile().cost_analysis()
    return float((cost[0] if isinstance(cost, list) else cost)["flops"])


def test_decoder_flops_match_xla_on_the_real_module():
    cfg = ae.AutoencoderConfig(block_out_channels=(32, 64, 64), layers_per_block=1, norm_num_groups=8)
    analytic = decoder_flops(DecoderShape(cfg.block_out_channels, cfg.layers_per_block, 4, 3), 16)
    assert analytic == pytest.approx(_xla_decoder_flops(cfg, 16), rel=0.03)


def test_the_sd_decoder_costs_more_than_three_c320_forwards():
    from ladder_api.ladder import UNetShape, forward_flops

    sd = decoder_flops(SD_DECODER, 64)
    assert 2.4e12 < sd < 2.6e12
    assert sd > 3 * forward_flops(UNetShape(base_channels=320), 64, 77)
