"""The Flax AutoencoderKL computes what diffusers' does at equal weights, scales latents in one
place, runs in bf16, compiles once per shape and gives the same result on a sharded batch.

Every test uses the codec of one small config (``ae.codec`` is cached per config), so the whole
file compiles each function once.
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from ladder_trainer.models import autoencoder as ae
from ladder_trainer.weights import convert

from . import diffusers_models as ref
from .conftest import trainer_env

SMALL = ae.AutoencoderConfig(**ref.SMALL_VAE)


def images(shape=(2, 24, 32, 3), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def converted(torch_vae, config):
    expected = convert.slots(ae.abstract_params(config), len(config.block_out_channels))
    state = ref.state_dict(torch_vae)
    assert convert.problems({k: v.shape for k, v in state.items()}, expected) == []
    return jax.tree_util.tree_map(jnp.asarray, convert.to_params(state.__getitem__, expected))


def check_parity(config, torch_vae, x):
    """encode (posterior and scaled latents) and decode (of scaled latents) against diffusers, whose
    pipelines multiply by scaling_factor after encode and divide before decode."""
    params, codec, sf = converted(torch_vae, config), ae.codec(config), config.scaling_factor
    with torch.no_grad():
        dist = torch_vae.encode(ref.nchw(x)).latent_dist
        decoded = torch_vae.decode(dist.mean).sample
    q = codec.posterior(params, x)
    ref.assert_close(q.mean, ref.nhwc(dist.mean))
    ref.assert_close(q.logvar, ref.nhwc(dist.logvar))
    ref.assert_close(q.kl(), dist.kl().numpy())
    ref.assert_close(codec.encode(params, x), sf * ref.nhwc(dist.mean))
    ref.assert_close(codec.decode(params, sf * ref.nhwc(dist.mean)), ref.nhwc(decoded))
    return params, q


def test_small_config_matches_diffusers():
    x = images()
    params, q = check_parity(SMALL, ref.vae(**ref.SMALL_VAE), x)
    assert q.mean.shape == (2, 12, 16, 4)  # f = 2 with two levels; H and W kept apart
    # A sample is the mean plus std-scaled standard normal noise, scaled like the mean.
    sampled = ae.codec(SMALL).encode(params, x, jax.random.key(1))
    noise = (sampled / SMALL.scaling_factor - q.mean) / q.std
    assert abs(float(noise.mean())) < 0.1 and abs(float(noise.std()) - 1) < 0.1
    expected = SMALL.scaling_factor * q.sample(jax.random.key(1))
    np.testing.assert_allclose(sampled, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_sd_config_matches_diffusers():
    """The real SD VAE architecture (84M parameters, 32 norm groups) on one 48x32 image."""
    torch_vae = ref.vae(**ref.SD_VAE)
    assert ae.param_count(ae.SD_VAE) == sum(p.numel() for p in torch_vae.parameters())
    check_parity(ae.SD_VAE, torch_vae, images((1, 48, 32, 3)))


def test_sd_config_is_diffusers_sd_vae():
    assert ae.AutoencoderConfig(**ref.SD_VAE) == ae.SD_VAE and ae.SD_VAE.scaling_factor == 0.18215
    four = {"down_block_types": ("DownEncoderBlock2D",) * 4, "up_block_types": ("UpDecoderBlock2D",) * 4}
    shapes = ref.shapes_on_meta(ref.AutoencoderKL, **ref.SD_VAE, **four)
    assert ae.param_count(ae.SD_VAE) == sum(np.prod(s) for s in shapes.values()) == 83_653_863


def test_scaling_is_in_one_place():
    z = jnp.array([1.0, -2.0])
    config = ae.AutoencoderConfig(scaling_factor=0.5)
    np.testing.assert_array_equal(ae.to_diffusion_latents(z, config), [0.5, -1.0])
    np.testing.assert_array_equal(ae.from_diffusion_latents(ae.to_diffusion_latents(z, config), config), z)


def test_codec_is_built_once_per_config_and_compiles_once_per_shape():
    codec = ae.codec(SMALL)
    assert ae.codec(ae.AutoencoderConfig(**ref.SMALL_VAE)) is codec
    assert ae.codec(SMALL, "bfloat16") is not codec
    params = ae.init_params(SMALL, seed=0)
    before = codec.encode._cache_size()
    for seed in range(3):
        codec.encode(params, images((1, 8, 40, 3), seed=seed))
    assert codec.encode._cache_size() == before + 1


def test_bf16_compute_keeps_float32_params_and_outputs():
    params = ae.init_params(SMALL, seed=0)
    x = images()
    lo, hi = ae.codec(SMALL, "bfloat16"), ae.codec(SMALL)
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))
    z16, z32 = lo.encode(params, x), hi.encode(params, x)
    assert z16.dtype == jnp.float32
    ref.assert_close(z16, z32, rtol=0.05)
    ref.assert_close(lo.decode(params, z32), hi.decode(params, z32), rtol=0.05)


SHARDED = r"""
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from ladder_trainer.models import autoencoder as ae

assert len(jax.devices()) == 8, jax.devices()
config = ae.AutoencoderConfig(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4)
params = ae.init_params(config, seed=0)
x = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 3)).astype(np.float32)
codec = ae.codec(config)
single_z = codec.encode(params, jax.device_put(x, jax.devices()[0]))
single_y = codec.decode(params, single_z)

mesh = Mesh(np.array(jax.devices()), ("data",))
batch = jax.device_put(x, NamedSharding(mesh, P("data")))
params = jax.device_put(params, NamedSharding(mesh, P()))
z = codec.encode(params, batch)
y = codec.decode(params, z)
assert len(z.sharding.device_set) == 8 and len(y.sharding.device_set) == 8
assert z.sharding.shard_shape(z.shape)[0] == 2, z.sharding
np.testing.assert_allclose(np.asarray(z), np.asarray(single_z), rtol=1e-5, atol=1e-5)
np.testing.assert_allclose(np.asarray(y), np.asarray(single_y), rtol=1e-5, atol=1e-5)
print("SHARDED-OK")
"""


def test_sharded_batch_equals_single_device():
    env = trainer_env("--xla_force_host_platform_device_count=8")
    cmd = [sys.executable, "-c", SHARDED]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "SHARDED-OK" in out.stdout
