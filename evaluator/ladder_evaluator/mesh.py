"""The evaluation slice's devices as one mesh: the sampling batch is split over all of them.

Every local device holds one slice of each batch (its rows of x_T, contexts and results) and a
full copy of the model's parameters: evaluation has no optimizer state, and even the paper's
largest U-Net (5B parameters, 10 GB in bf16) fits one chip of the eval slice, so data parallelism
alone keeps every chip busy with no collective inside the sampling loop (the per-step guidance
combination is row-wise). A batch is split over as many devices as divide it evenly (see
`usable_devices`): choose evaluation.batchSize a multiple of the slice's chips to use them all.

Local devices only: the eval slice is one host (validation refuses a multi-host one), and a
worker's samples never leave the host that computes its FID.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "batch"


def usable_devices(batch_size: int, available: int) -> int:
    """How many devices a batch is split over: the most that divide it evenly. Every device then
    samples the same number of rows, and the batch keeps its shape, so the noise drawn inside the
    sampling loop (DDPM, DDIM with eta > 0) is the same on any mesh (JAX's partitionable
    threefry draws the same numbers however an array is sharded); padding the batch up to the
    device count would change that shape and so that noise."""
    return max(k for k in range(1, available + 1) if batch_size % k == 0)


def make_mesh(devices=None, batch_size: int | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: every local device of this process), or over as many
    of them as divide `batch_size`."""
    devices = jax.local_devices() if devices is None else list(devices)
    if batch_size is not None:
        devices = devices[: usable_devices(batch_size, len(devices))]
    return Mesh(np.array(devices), (AXIS,))


def rows(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the mesh, the rest whole."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())
