"""Run a metric network over host batches on every local accelerator: the batch is split over
ladder_trainer.data_mesh's one-axis `data` mesh, the parameters are replicated, and every call has
the same padded batch shape, so each network compiles once per evaluation however many samples a
grid point has.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import Mesh

from ladder_trainer.data_mesh import data_mesh, pad, padded_rows, replicated, rows


class ShardedBatches:
    """`fn(params, *arrays)` over arrays of any length, `batch` rows per call (rounded up to a
    multiple of the mesh size), rows sharded over `data`; the last call is zero-padded and the
    padding rows are dropped from the output."""

    def __init__(self, fn: Callable, params, batch: int, mesh: Mesh | None = None):
        self.mesh = mesh or data_mesh()
        self.batch = padded_rows(batch, self.mesh)
        on_rows = rows(self.mesh)
        self.params = jax.device_put(params, replicated(self.mesh))
        self._fn = jax.jit(lambda p, xs: fn(p, *xs), in_shardings=(replicated(self.mesh), on_rows),
                           out_shardings=on_rows)

    def programs(self) -> int:
        """Programs compiled so far: one per batch shape, so 1 however many calls were made."""
        return self._fn._cache_size()

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        """Rows of fn's output for all rows of `arrays` (an empty input gives an empty array)."""
        total = len(arrays[0])
        out = []
        for start in range(0, total, self.batch):
            chunk = [a[start:start + self.batch] for a in arrays]
            k = len(chunk[0])
            chunk = [pad(c, self.batch) for c in chunk]
            out.append(np.asarray(self._fn(self.params, tuple(chunk)))[:k])
        return np.concatenate(out) if out else np.zeros((0,), np.float32)
