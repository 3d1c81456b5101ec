"""Random access to a `ladder-latents/v2` training set: example i -> one ranged read.

gs:// reads go through tensorstore's kvstore (its gcs driver, which honours
TENSORSTORE_GCS_HTTP_URL), so a batch's reads are issued at once and run concurrently outside the
GIL; the caller waits once per batch. Local parts are read with preadv (tensorstore's file driver
reads the same ranges several times slower).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from ladder_api import storage
from ladder_api.errors import UserError
from ladder_trainer.data.format import Manifest, read_manifest, read_null_context


def kvstore_spec(uri: str) -> dict:
    """The tensorstore kvstore of a folder: a local path, file:// or gs://bucket/prefix."""
    if storage.is_remote(uri):
        bucket, _, prefix = uri[len(storage.GS):].partition("/")
        prefix = prefix.strip("/")
        return {"driver": "gcs", "bucket": bucket, "path": f"{prefix}/" if prefix else ""}
    return {"driver": "file", "path": str(storage.local_path(uri)).rstrip("/") + "/"}


class RecordSource:
    """A grain RandomAccessDataSource (len, [i]) with a batched ``read(indices)``."""

    def __init__(self, uri: str, manifest: Manifest | None = None):
        import tensorstore as ts

        self.uri = uri
        self.manifest = manifest or read_manifest(uri)
        self.layout = self.manifest.layout
        self._scalar = np.dtype(self.layout.dtype).newbyteorder("<")
        self._cut = int(np.prod(self.layout.latent_shape)) * self._scalar.itemsize
        self._starts = np.cumsum([0] + [p.num_examples for p in self.manifest.parts])
        self._local = not storage.is_remote(uri)
        self._files: dict[int, int] = {}  # part -> open file descriptor (local)
        self._kv = None if self._local else ts.KvStore.open(kvstore_spec(uri)).result()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"example index out of range 0..{len(self) - 1}")
        part = np.searchsorted(self._starts, indices, side="right") - 1
        return part, indices - self._starts[part]

    def read(self, indices) -> dict[str, np.ndarray]:
        """Examples `indices` (in that order): latents [n, H, W, C], context [n, T, D], stored dtype.
        Each record's bytes land directly in the two output arrays (no intermediate copy)."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        parts, rows = self._locate(indices)
        n = len(indices)
        lat = np.empty((n, *self.layout.latent_shape), self._scalar)
        ctx = np.empty((n, *self.layout.context_shape), self._scalar)
        targets = [(memoryview(lat[i]).cast("B"), memoryview(ctx[i]).cast("B")) for i in range(n)]
        (self._read_local if self._local else self._read_remote)(parts, rows, targets)
        return {"latents": lat, "context": ctx}

    def _missing(self, path: str) -> UserError:
        return UserError(f"{storage.join(self.uri, path)}: missing or truncated (the dataset changed "
                         "after its manifest was written?): prepare it again")

    def _fd(self, k: int) -> int:
        if k not in self._files:
            p = self.manifest.parts[k]
            path = storage.local_path(storage.join(self.uri, p.path))
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise self._missing(p.path) from None
            if os.fstat(fd).st_size < p.offset + p.num_examples * self.layout.record_bytes:
                os.close(fd)
                raise self._missing(p.path)
            self._files[k] = fd
        return self._files[k]

    def _read_local(self, parts: np.ndarray, rows: np.ndarray, targets) -> None:
        """preadv scatters each record into its two targets: one system call per example."""
        size = self.layout.record_bytes
        for (k, j), bufs in zip(zip(parts.tolist(), rows.tolist(), strict=True), targets, strict=True):
            p = self.manifest.parts[k]
            if os.preadv(self._fd(k), bufs, p.offset + j * size) != size:
                raise self._missing(p.path)

    def _read_remote(self, parts: np.ndarray, rows: np.ndarray, targets) -> None:
        """One ranged GET per example, all issued before the first is awaited."""
        size = self.layout.record_bytes
        futures = []
        for k, j in zip(parts.tolist(), rows.tolist(), strict=True):
            p = self.manifest.parts[k]
            start = p.offset + j * size
            futures.append((p.path, self._kv.read(p.path, byte_range=slice(start, start + size))))
        for (path, fut), (lat, ctx) in zip(futures, targets, strict=True):
            result = fut.result()
            value = memoryview(result.value)
            if result.state != "value" or len(value) != size:
                raise self._missing(path)
            lat[:] = value[:self._cut]
            ctx[:] = value[self._cut:]

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        batch = self.read([int(i)])
        return {k: v[0] for k, v in batch.items()}

    def null_context(self) -> np.ndarray:
        return read_null_context(self.uri, self.manifest)

    def close(self) -> None:
        files, self._files = self._files, {}
        for fd in files.values():
            os.close(fd)

    def __del__(self):
        with contextlib.suppress(Exception):  # at interpreter shutdown os may already be gone
            self.close()


class ArraySource:
    """In-memory source with the same interface (the bundled digits)."""

    def __init__(self, latents: np.ndarray, context: np.ndarray):
        self.latents, self.context = latents, context

    def __len__(self) -> int:
        return len(self.latents)

    def read(self, indices) -> dict[str, np.ndarray]:
        idx = np.asarray(indices, np.int64).reshape(-1)
        return {"latents": self.latents[idx], "context": self.context[idx]}

    def __getitem__(self, i: int) -> dict:
        return {"latents": self.latents[int(i)], "context": self.context[int(i)]}
