"""The device mesh ('data', 'fsdp') from training.sharding, and how arrays are laid out on it.

- The batch is split over both axes (every device holds global_batch / devices examples).
- Across several slices (multislice) the mesh is hybrid: each fsdp row stays within one slice (ICI)
  and the data axis spans the slices over the data-centre network (``device_grid``).
- Parameters, EMA and optimizer moments are sharded over 'fsdp' along their largest dimension
  that divides evenly (replicated when none does, e.g. small biases); XLA inserts the all-gathers
  and reduce-scatters. With fsdp = 1 this is plain data parallelism.
The rule depends only on a leaf's shape, so Adam's mu and nu land where their parameter does.

Multi-host: ``maybe_initialize_distributed`` calls ``jax.distributed.initialize()`` only when the
environment GKE/JobSet injects says there are several processes (TPU_WORKER_HOSTNAMES with more
than one host, or MEGASCALE_* for multislice); a single host never waits for a coordinator.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ladder_api.errors import TransientError, UserError
from ladder_trainer import compile_options
from ladder_trainer.data_mesh import replicated

AXES = ("data", "fsdp")


def is_multi_host(env=os.environ) -> bool:
    hosts = [h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h.strip()]
    slices = int(env.get("MEGASCALE_NUM_SLICES", "1") or 1)
    return len(hosts) > 1 or slices > 1 or bool(env.get("MEGASCALE_COORDINATOR_ADDRESS"))


def maybe_initialize_distributed(env=os.environ, timeout_s: int = 300) -> bool:
    """Join the run's other hosts (multi-host only). Every host waits up to timeout_s
    (training.distributedInitTimeoutSeconds) for all of them: hosts start as their image pulls
    finish, minutes apart on fresh nodes. Failing to get there is an infrastructure fault (exit
    42, restart). When the wait itself times out, XLA aborts the process (SIGABRT, exit 134),
    which the podFailurePolicy restarts too."""
    if not is_multi_host(env):
        return False
    try:
        jax.distributed.initialize(initialization_timeout=int(timeout_s))
    except Exception as err:
        raise TransientError(
            f"jax.distributed.initialize did not reach the coordinator within {timeout_s} s "
            f"(training.distributedInitTimeoutSeconds): {type(err).__name__}: {err}"
        ) from err
    return True


def mesh_shape(sharding_spec, n_devices: int) -> tuple[int, int]:
    fsdp = int(sharding_spec.fsdp)
    if n_devices % fsdp:
        raise UserError(f"training.sharding.fsdp {fsdp} does not divide the {n_devices} devices")
    data = n_devices // fsdp if sharding_spec.data == -1 else int(sharding_spec.data)
    if data * fsdp != n_devices:
        raise UserError(
            f"training.sharding data {data} x fsdp {fsdp} = {data * fsdp} but there are {n_devices} "
            "devices; use data: -1 to take the remaining devices"
        )
    return data, fsdp


def make_mesh(sharding_spec, devices=None, slice_of=None) -> Mesh:
    """The ('data', 'fsdp') mesh over devices (default: all of the run's). slice_of(device) is its
    TPU slice (default: the device's slice_index, 0 where there is none, as on one slice)."""
    devices = list(jax.devices() if devices is None else devices)
    slice_of = slice_of or (lambda d: getattr(d, "slice_index", 0))
    return Mesh(device_grid(devices, [slice_of(d) for d in devices], sharding_spec), AXES)


def device_grid(devices, slice_ids, sharding_spec) -> np.ndarray:
    """devices as a (data, fsdp) array: a hybrid ICI x DCN mesh when they span several slices.

    Every fsdp row lies within one slice, so FSDP's all-gathers and reduce-scatters (every step,
    every layer) run over the slice's ICI, and the data axis crosses slices: only the gradient
    all-reduce goes over the data-centre network, slower by one to two orders of magnitude.
    Within a slice JAX orders the devices along the ICI torus. Pure: slice_ids[i] is the slice
    of devices[i], so tests can shape fake devices like slices.
    """
    data, fsdp = mesh_shape(sharding_spec, len(devices))
    groups: dict[int, list] = {}
    for device, sid in zip(devices, slice_ids, strict=True):
        groups.setdefault(int(sid), []).append(device)
    per_slice = {len(g) for g in groups.values()}
    if len(per_slice) != 1:
        sizes = {k: len(g) for k, g in groups.items()}
        raise ValueError(f"slices hold different numbers of devices: {sizes}")
    (n_per_slice,) = per_slice
    if n_per_slice % fsdp:
        raise UserError(
            f"training.sharding.fsdp {fsdp} does not divide the {n_per_slice} devices of one slice "
            f"({len(groups)} slices): FSDP must stay within a slice"
        )
    shape = (n_per_slice // fsdp, fsdp)
    return np.concatenate([_slice_grid(groups[k], shape) for k in sorted(groups)], axis=0)


def _slice_grid(devices: list, shape: tuple[int, int]) -> np.ndarray:
    """One slice's devices as shape, in JAX's topology-aware order on TPU (rings along the
    torus); given order elsewhere, or where the TPU layout cannot take the shape."""
    from jax.experimental import mesh_utils

    try:
        return mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
    except (ValueError, NotImplementedError):
        return np.asarray(devices).reshape(shape)


def leaf_spec(shape: tuple[int, ...], fsdp: int) -> P:
    if fsdp == 1 or not shape:
        return P()
    dims = sorted(range(len(shape)), key=lambda d: (-shape[d], d))
    for d in dims:
        if shape[d] % fsdp == 0:
            spec = [None] * len(shape)
            spec[d] = "fsdp"
            return P(*spec)
    return P()


def tree_shardings(tree, mesh: Mesh):
    fsdp = mesh.shape["fsdp"]
    return jax.tree_util.tree_map(lambda x: NamedSharding(mesh, leaf_spec(tuple(x.shape), fsdp)), tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(AXES))


def sharded_train_step(step_fn, state_shardings, mesh: Mesh):
    """jit step_fn (the un-jitted train_step) with the state's and the batch's layouts fixed, and
    the compiler options of the mesh's platform (ladder_trainer.compile_options)."""
    batch = {"latents": batch_sharding(mesh), "context": batch_sharding(mesh)}
    return jax.jit(
        step_fn,
        in_shardings=(state_shardings, batch, replicated(mesh)),
        out_shardings=(state_shardings, replicated(mesh)),
        donate_argnums=(0,),
        compiler_options=compile_options.for_platform(mesh.devices.flat[0].platform),
    )


def put_global(value, sharding):
    """A host array that is identical on every process (e.g. the null context) as one global array
    in sharding: each device receives its shard (device_put of host data onto devices of other
    processes is not allowed on multi-host)."""
    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def put_batch(batch: dict, mesh: Mesh) -> dict:
    """This process's slice of the global batch -> global arrays laid out over the mesh."""
    sh = batch_sharding(mesh)
    if jax.process_count() == 1:
        return {k: jax.device_put(v, sh) for k, v in batch.items()}
    return {k: jax.make_array_from_process_local_data(sh, v) for k, v in batch.items()}
