"""Random access to a `ladder-latents/v2` training set: example i -> one ranged read.

Reads go through tensorstore's kvstore (the file driver locally, the gcs driver for gs://, which
honours TENSORSTORE_GCS_HTTP_URL), so a batch's reads are issued at once and run concurrently
outside the GIL; the caller waits once per batch.
"""

from __future__ import annotations

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
        self._dtype = self.layout.numpy_dtype
        self._starts = np.cumsum([0] + [p.num_examples for p in self.manifest.parts])
        self._kv = ts.KvStore.open(kvstore_spec(uri)).result()

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if len(indices) and (indices.min() < 0 or indices.max() >= len(self)):
            raise IndexError(f"example index out of range 0..{len(self) - 1}")
        part = np.searchsorted(self._starts, indices, side="right") - 1
        return part, indices - self._starts[part]

    def read(self, indices) -> dict[str, np.ndarray]:
        """Examples `indices` (in that order): latents [n, H, W, C], context [n, T, D], stored dtype."""
        indices = np.asarray(indices, np.int64).reshape(-1)
        parts, rows = self._locate(indices)
        size = self.layout.record_bytes
        futures = []
        for k, j in zip(parts.tolist(), rows.tolist(), strict=True):
            p = self.manifest.parts[k]
            start = p.offset + j * size
            futures.append((p.path, self._kv.read(p.path, byte_range=slice(start, start + size))))
        buf = bytearray(size * len(futures))
        for n, (path, fut) in enumerate(futures):
            result = fut.result()
            value = result.value
            if result.state != "value" or len(value) != size:
                raise UserError(f"{storage.join(self.uri, path)}: missing or truncated (the dataset "
                                "changed after its manifest was written?): prepare it again")
            buf[n * size:(n + 1) * size] = value
        records = np.frombuffer(buf, self._dtype)
        return {"latents": records["latents"], "context": records["context"]}

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        batch = self.read([int(i)])
        return {k: v[0] for k, v in batch.items()}

    def null_context(self) -> np.ndarray:
        return read_null_context(self.uri, self.manifest)


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
