"""A step sharded over a ('data', 'fsdp') mesh of 8 CPU devices equals the single-device step.

Runs in a subprocess: the 8 fake devices come from XLA_FLAGS, which must be set before JAX starts
and would change every other test sharing this worker.
"""

import subprocess
import sys

import pytest

from ladder_api.errors import UserError
from ladder_api.spec import ShardingSpec
from ladder_trainer.sharding import is_multi_host, leaf_spec, mesh_shape

from .conftest import trainer_env

SCRIPT = r"""
import sys
sys.path.insert(0, "tests/trainer")
import jax, numpy as np
from conftest import make_run
from ladder_trainer import sharding
from ladder_trainer.data.reader import BatchStream, open_data
from ladder_trainer.train_step import _train_step, abstract_state, init_state, train_step

assert len(jax.devices()) == 8, jax.devices()
# One resolution level: half the ops of the quickstart layout, so half the compile time.
run = make_run(sharding={"data": -1, "fsdp": 2}, globalBatch=16,
               ladder={"channelMult": [1], "attentionLevels": [0]})
data = open_data(run.data, run.model)
batch = BatchStream(data.source, 16, 0).batch(0)
abstract = abstract_state(run, data.null_context.shape)
rng = jax.random.key(7)

single = init_state(run, 0, data.null_context, abstract.config)
single, m1 = train_step(single, {k: jax.numpy.asarray(v) for k, v in batch.items()}, rng)

mesh = sharding.make_mesh(run.training.sharding)
shardings = sharding.tree_shardings(abstract, mesh)
state = init_state(run, 0, data.null_context, abstract.config, shardings)
n_sharded = sum(1 for s in jax.tree_util.tree_leaves(shardings.params) if "fsdp" in str(s.spec))
assert n_sharded > 0, "no parameter is sharded over fsdp"
step = sharding.sharded_train_step(_train_step, shardings, mesh)
state, m2 = step(state, sharding.put_batch(batch, mesh), rng)
leaf = jax.tree_util.tree_leaves(state.params)[0]
assert len(leaf.sharding.device_set) == 8
np.testing.assert_allclose(float(m1["loss"]), float(m2["loss"]), rtol=1e-5)
for a, b in zip(jax.tree_util.tree_leaves(single.params), jax.tree_util.tree_leaves(state.params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)
print("SHARDED-OK", n_sharded)
"""


@pytest.mark.slow
def test_sharded_step_equals_single_device_step():
    env = trainer_env("--xla_force_host_platform_device_count=8")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "SHARDED-OK" in out.stdout


def test_mesh_shape_from_spec():
    assert mesh_shape(ShardingSpec(data=-1, fsdp=2), 8) == (4, 2)
    assert mesh_shape(ShardingSpec(data=8, fsdp=1), 8) == (8, 1)
    with pytest.raises(UserError, match="fsdp 3"):
        mesh_shape(ShardingSpec(fsdp=3), 8)
    with pytest.raises(UserError, match="data 2 x fsdp 2"):
        mesh_shape(ShardingSpec(data=2, fsdp=2), 8)


def test_fsdp_shards_the_largest_divisible_dimension():
    assert str(leaf_spec((3, 3, 64, 128), 2)) == str(leaf_spec((3, 3, 64, 128), 2))
    assert tuple(leaf_spec((3, 3, 64, 128), 2)) == (None, None, None, "fsdp")
    assert tuple(leaf_spec((7,), 2)) == ()
    assert tuple(leaf_spec((128, 3), 1)) == ()


def test_multi_host_only_from_the_environment():
    assert not is_multi_host({})
    assert not is_multi_host({"TPU_WORKER_HOSTNAMES": "localhost"})
    assert is_multi_host({"TPU_WORKER_HOSTNAMES": "a,b,c,d"})
    assert is_multi_host({"MEGASCALE_NUM_SLICES": "2", "TPU_WORKER_HOSTNAMES": "a"})


INIT_SCRIPT = r"""
import sys
sys.path.insert(0, "tests/trainer")
from collections import defaultdict
import math
import jax, numpy as np
from conftest import ONE_LEVEL, make_run
from ladder_trainer import checkpointing, sharding
from ladder_trainer.data import digits
from ladder_trainer.models import init_params
from ladder_trainer.train_step import abstract_state, init_state, state_initializer

run = make_run(sharding={"data": -1, "fsdp": 8}, ladder=ONE_LEVEL)
null = digits.null_context(run.model.context_dim, run.model.context_tokens)
abstract = abstract_state(run, null.shape)
mesh = sharding.make_mesh(run.training.sharding)
shardings = sharding.tree_shardings(abstract, mesh)

def nbytes(shape, dtype):
    return math.prod(shape) * np.dtype(dtype).itemsize

def share(tree, shard_tree):
    # The most any one device holds of tree when laid out as shard_tree.
    per_device = defaultdict(int)
    for a, s in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(shard_tree)):
        for device, index in s.devices_indices_map(a.shape).items():
            shape = [len(range(*ix.indices(n))) for ix, n in zip(index, a.shape)]
            per_device[device] += nbytes(shape, a.dtype)
    return max(per_device.values())

def live_per_device():
    out = defaultdict(int)
    for arr in jax.live_arrays():
        for shard in arr.addressable_shards:
            out[shard.device] += shard.data.nbytes
    return max(out.values())

MARGIN = 1.02
ALIGN = 64  # XLA pads each buffer to 64 bytes: the compiled program's sizes include that per leaf
whole = sum(nbytes(a.shape, a.dtype) for a in jax.tree_util.tree_leaves(abstract.params))
params_share, state_share = share(abstract.params, shardings.params), share(abstract, shardings)
assert params_share < whole / 4, (params_share, whole)  # the check below can tell the two apart

# 1. Parameters are made leaf by leaf straight into their shards.
params = init_params(run.model, 0, shardings=shardings.params)
assert live_per_device() <= params_share * MARGIN, (live_per_device(), params_share, whole)
del params

# 2. The one compiled program that builds EMA and Adam state needs no more than the state's share.
arg_targets = (checkpointing.placed(abstract.params, shardings.params),
               checkpointing.placed(abstract.null_context, shardings.null_context))
mem = state_initializer(abstract.config, shardings).lower(*arg_targets).compile().memory_analysis()
peak = (mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
        + mem.temp_size_in_bytes)
n_buffers = len(jax.tree_util.tree_leaves(abstract)) + len(jax.tree_util.tree_leaves(abstract.params))
assert peak <= state_share * MARGIN + ALIGN * n_buffers, (peak, state_share, n_buffers)

# 3. The whole init through the trainer's path: laid out as planned, same values as unsharded.
state = init_state(run, 0, null, abstract.config, shardings)
assert live_per_device() <= state_share * MARGIN, (live_per_device(), state_share)
for leaf, want in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(shardings)):
    assert leaf.sharding.is_equivalent_to(want, leaf.ndim), (leaf.sharding, want)
reference = init_state(run, 0, null, abstract.config)
for a, b in zip(jax.tree_util.tree_leaves(reference), jax.tree_util.tree_leaves(state), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
print("INIT-OK", whole, params_share, state_share, peak)
"""


@pytest.mark.slow
def test_initialisation_never_holds_more_than_a_share_per_device():
    env = trainer_env("--xla_force_host_platform_device_count=8")
    out = subprocess.run([sys.executable, "-c", INIT_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "INIT-OK" in out.stdout


MULTISLICE_SCRIPT = r"""
import jax, numpy as np
from ladder_api.errors import UserError
from ladder_api.spec import ShardingSpec
from ladder_trainer.sharding import device_grid, make_mesh

devices = jax.devices()
assert len(devices) == 8
# Two slices of 4 chips, interleaved in device order (as a plain reshape would mix them):
# fake CPU devices carry no slice_index, so the map is passed in.
slice_of = {d: d.id % 2 for d in devices}
mesh = make_mesh(ShardingSpec(data=-1, fsdp=4), devices, slice_of.__getitem__)
assert mesh.axis_names == ("data", "fsdp") and mesh.devices.shape == (2, 4)
for row in mesh.devices:  # each FSDP group within one slice: its collectives stay on the ICI
    assert len({slice_of[d] for d in row}) == 1, row
assert [slice_of[row[0]] for row in mesh.devices] == [0, 1]  # data parallelism over the DCN
assert sorted(d.id for d in mesh.devices.flat) == list(range(8))

grid = device_grid(devices, [slice_of[d] for d in devices], ShardingSpec(data=-1, fsdp=2))
assert grid.shape == (4, 2)
assert [slice_of[r[0]] for r in grid] == [0, 0, 1, 1]
assert all(len({slice_of[d] for d in r}) == 1 for r in grid)
# One slice (the default slice_of on these devices): unchanged, devices in order.
single = make_mesh(ShardingSpec(data=-1, fsdp=4), devices)
assert [d.id for d in single.devices.flat] == list(range(8))
try:
    device_grid(devices, [slice_of[d] for d in devices], ShardingSpec(data=1, fsdp=8))
except UserError as err:
    assert "within a slice" in str(err), err
else:
    raise AssertionError("fsdp spanning two slices was accepted")
print("MULTISLICE-OK")
"""


def test_multislice_mesh_keeps_fsdp_within_a_slice():
    env = trainer_env("--xla_force_host_platform_device_count=8")
    out = subprocess.run([sys.executable, "-c", MULTISLICE_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "MULTISLICE-OK" in out.stdout
