"""The autoencoder of `ladder prepare` and of the evaluator (ladder_trainer.models.sd_vae) runs on
every local device: the batch is sharded over a `data` mesh (padded to a multiple of the devices)
and encodes and decodes as one device does. Runs in a
subprocess: the 4 fake CPU devices come from XLA_FLAGS, read when JAX starts."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import sys, jax, numpy as np
from ladder_api.loading import load_experiment
from ladder_prepare import autoencoding
from ladder_prepare.target import Target
from ladder_trainer import data_mesh
from ladder_trainer.models.autoencoder import codec

assert len(jax.local_devices()) == 4, jax.local_devices()
enc = autoencoding.load(Target.from_spec(load_experiment(sys.argv[1]).spec))
assert enc.mesh.size == 4
u8 = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
sharded = enc.encode(u8, pad_to=8)
one = jax.device_put(jax.device_get(enc.params), jax.local_devices()[0])
x = jax.device_put(u8.astype(np.float32) / 127.5 - 1, jax.local_devices()[0])
single = np.asarray(codec(enc.config).encode(one, x))
assert sharded.shape == (6, 8, 8, 4), sharded.shape
np.testing.assert_allclose(sharded, single, rtol=1e-5, atol=1e-5)
zeros = jax.device_put(np.zeros((8, 16, 16, 3), np.float32), data_mesh.rows(enc.mesh))
out = codec(enc.config).encode(enc.params, zeros)
assert len(out.sharding.device_set) == 4
# The evaluator decodes with the same object: sharded and padded, equal to one device.
decoded = enc.vae.decode(sharded, pad_to=8)
alone = codec(enc.config).decode(one, jax.device_put(sharded, jax.local_devices()[0]))
alone = np.clip(np.asarray(alone), -1, 1)
assert decoded.shape == (6, 16, 16, 3), decoded.shape
np.testing.assert_allclose(decoded, alone, rtol=1e-5, atol=1e-5)
print("SHARDED-ENCODE-OK")
"""


def test_encoding_and_decoding_are_sharded_over_local_devices_and_equal_one_device(vae_spec):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, vae_spec], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "SHARDED-ENCODE-OK" in out.stdout
