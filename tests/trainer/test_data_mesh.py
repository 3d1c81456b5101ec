"""ladder_trainer.data_mesh: the one 1-D data mesh that sampling, the metric networks and the
autoencoder share. Checked on 8 fake CPU devices (XLA_FLAGS, read when JAX starts: a subprocess),
with no network compiled, so it takes seconds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from ladder_trainer import data_mesh
from tests.trainer.conftest import trainer_env

SCRIPT = r"""
import jax, numpy as np
from ladder_trainer import data_mesh as M
from ladder_evaluator.metrics.jax_batches import ShardedBatches

assert len(jax.local_devices()) == 8, jax.local_devices()
mesh = M.data_mesh()
assert mesh.axis_names == ("data",) and mesh.devices.size == 8
assert M.data_mesh(batch_size=12).devices.size == 6  # the most devices that divide 12
x = jax.device_put(np.arange(16.0).reshape(16, 1), M.rows(mesh))
assert [s.data.shape for s in x.addressable_shards] == [(2, 1)] * 8  # 2 rows on each device
p = jax.device_put(np.ones(3), M.replicated(mesh))
assert all(s.data.shape == (3,) for s in p.addressable_shards) and len(p.sharding.device_set) == 8
# the metric networks' batches run on that same mesh, padded to a multiple of 8 and cut back
sb = ShardedBatches(lambda w, a: a * w, np.float32(2.0), batch=5)
assert sb.mesh.axis_names == mesh.axis_names and sb.mesh.devices.size == 8 and sb.batch == 8
out = sb(np.arange(11.0, dtype=np.float32).reshape(11, 1))
np.testing.assert_array_equal(out[:, 0], 2 * np.arange(11.0))
print("DATA-MESH-OK")
"""


def test_the_data_mesh_splits_rows_over_eight_local_devices_for_every_user():
    done = subprocess.run([sys.executable, "-c", SCRIPT],
                          env=trainer_env("--xla_force_host_platform_device_count=8"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "DATA-MESH-OK" in done.stdout


def test_padding_to_the_mesh_keeps_one_shape_per_batch_size():
    mesh = data_mesh.data_mesh()  # this process: one CPU device
    assert data_mesh.padded_rows(5, mesh) == 5 and data_mesh.padded_rows(5, mesh, at_least=8) == 8
    x = np.ones((3, 2), np.float16)
    padded = data_mesh.pad(x, 5)
    assert padded.shape == (5, 2) and padded.dtype == np.float16 and not padded[3:].any()
    assert data_mesh.pad(x, 2).shape == data_mesh.pad(x, 3).shape == (3, 2)  # never cut


def test_padded_rows_rounds_up_to_the_device_count():
    class Eight:
        class devices:  # noqa: N801 - stands in for a mesh's device array
            size = 8

    assert [data_mesh.padded_rows(n, Eight) for n in (1, 8, 9)] == [8, 8, 16]
    assert data_mesh.padded_rows(3, Eight, at_least=12) == 16
    assert data_mesh.usable_devices(12, 8) == 6 and data_mesh.usable_devices(7, 8) == 7
