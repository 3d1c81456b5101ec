"""The decoder's working set per image in ladder_api.eval_memory against XLA's memory analysis of
the real decoder (a tiny SD-layout AutoencoderKL; SD's own agrees too: bench/evaluator.md)."""

import jax
import jax.numpy as jnp

from ladder_api.eval_memory import decoder_params, decoder_peak_elements
from ladder_api.frozen_cost import DecoderShape
from ladder_trainer.models import autoencoder as ae

AE = ae.AutoencoderConfig(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                          latent_channels=4, scaling_factor=0.5)
SHAPE = DecoderShape(block_out_channels=(8, 16), layers_per_block=1, latent_channels=4)


def test_decoder_memory_plan_against_xla():
    model = ae.build_autoencoder(AE, "float32")
    latent, batch = 8, 2
    side = latent * AE.downsample_factor
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, side, side, 3))))["params"]
    z = jax.ShapeDtypeStruct((batch, latent, latent, 4), jnp.float32)

    def decode(p, z):
        return model.apply({"params": p}, z, method=ae.AutoencoderKL.decode)

    mem = jax.jit(decode).lower(params, z).compile().memory_analysis()
    xla_temp = mem.temp_size_in_bytes / batch
    assert abs(decoder_peak_elements(SHAPE, latent, block=True) * 4 / xla_temp - 1) < 0.1
    assert decoder_peak_elements(SHAPE, latent) * 4 < xla_temp  # the bound validation uses
    assert decoder_params(SHAPE) * 4 == mem.argument_size_in_bytes - z.size * 4
