"""The evaluation slice's devices as one mesh: the sampling batch is split over all of them.

Every local device holds one slice of each batch (its rows of x_T, contexts and results) and a
full copy of the model's parameters: evaluation has no optimizer state, and even the paper's
largest U-Net (5B parameters, 10 GB in bf16) fits one chip of the eval slice, so data parallelism
alone keeps every chip busy with no collective inside the sampling loop (the per-step guidance
combination is row-wise). The batch is padded up to a multiple of the device count with rows
that are dropped afterwards, so any evaluation.batchSize runs on any slice.

Local devices only: the eval slice is one host (validation refuses a multi-host one), and a
worker's samples never leave the host that computes its FID.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "batch"


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: every local device of this process)."""
    devices = jax.local_devices() if devices is None else list(devices)
    return Mesh(np.array(devices), (AXIS,))


def rows(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the mesh, the rest whole."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def padded_batch(batch_size: int, mesh: Mesh) -> int:
    """The smallest multiple of the device count that holds `batch_size` rows."""
    n = mesh.devices.size
    return math.ceil(batch_size / n) * n


def pad_rows(a, size: int):
    """`a` with zero rows appended up to `size` rows (they are sampled and thrown away)."""
    a = np.asarray(a)
    if len(a) == size:
        return a
    return np.concatenate([a, np.zeros((size - len(a), *a.shape[1:]), a.dtype)])
