"""The one-axis ``data`` mesh over this process's devices, the one every host-batch computation
shares: the evaluator's sampling loop, its metric networks (Inception, CLIP) and the autoencoder
that ``ladder prepare`` encodes with and the evaluator decodes with. A batch's rows are split over
the devices and the parameters are replicated: these networks are frozen or sampled, so there is
no optimizer state to shard, and even the paper's largest U-Net (5B parameters, 10 GB in bf16)
fits one chip, so data parallelism keeps every chip busy with no collective inside the loop.
Training's two-axis (data, fsdp) mesh over every host is ladder_trainer.sharding's.

Local devices only: evaluation and preparation read host arrays on one host, and a batch never
leaves the host that computes it.

A batch meets the mesh in one of two ways. ``usable_devices``: split over as many devices as
divide it evenly, for sampling, whose noise is drawn inside the loop at the batch's shape (padding
would change that noise). ``padded_rows``: zero rows appended up to a multiple of the device
count, for deterministic networks, where the padding rows are dropped and change nothing.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "data"


def usable_devices(batch_size: int, available: int) -> int:
    """How many devices a batch is split over without padding: the most that divide it evenly.
    Every device then samples the same number of rows and the batch keeps its shape, so noise
    drawn inside the sampling loop (DDPM, DDIM with eta > 0) is the same on any mesh (JAX's
    partitionable threefry draws the same numbers however an array is sharded)."""
    return max(k for k in range(1, available + 1) if batch_size % k == 0)


def data_mesh(devices=None, batch_size: int | None = None) -> Mesh:
    """A 1-D ``data`` mesh over `devices` (default: every local device of this process), or over
    as many of them as divide `batch_size` (usable_devices)."""
    devices = jax.local_devices() if devices is None else list(devices)
    if batch_size is not None:
        devices = devices[: usable_devices(batch_size, len(devices))]
    return Mesh(np.array(devices), (AXIS,))


def rows(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the mesh, the rest whole."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A whole copy on every device of the mesh (parameters, constants)."""
    return NamedSharding(mesh, PartitionSpec())


def padded_rows(n: int, mesh: Mesh, at_least: int = 0) -> int:
    """Rows a batch of n is padded to: max(n, at_least) rounded up to a multiple of the mesh
    size, so every call with the same `at_least` has one shape (one compiled program)."""
    total, d = max(n, at_least, 1), mesh.devices.size
    return total + (-total) % d


def pad(x: np.ndarray, total: int) -> np.ndarray:
    """x with zero rows appended up to `total` rows (x itself when it has them)."""
    x = np.asarray(x)
    if len(x) >= total:
        return x
    return np.concatenate([x, np.zeros((total - len(x), *x.shape[1:]), x.dtype)])
