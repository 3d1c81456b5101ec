"""Read and write small files at a local path, file:// URI or gs:// URI.

gs:// goes through google-cloud-storage, which honours STORAGE_EMULATOR_HOST (fake-gcs-server in
tests). Only small files pass through here (prompt embeddings, reference statistics, sample
grids); checkpoints are orbax's business.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ladder_api.errors import UserError


def _split_gs(uri: str) -> tuple[str, str]:
    bucket, _, blob = uri[len("gs://"):].partition("/")
    return bucket, blob


def _gcs_blob(uri: str):
    from google.cloud import storage

    bucket, blob = _split_gs(uri)
    return storage.Client().bucket(bucket).blob(blob)


def local_path(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri)


def read_bytes(uri: str) -> bytes:
    """Raises FileNotFoundError for a missing object (callers turn it into a UserError)."""
    if uri.startswith("gs://"):
        from google.api_core import exceptions as gexc

        try:
            return _gcs_blob(uri).download_as_bytes()
        except gexc.NotFound:
            raise FileNotFoundError(uri) from None
        except gexc.GoogleAPIError as err:
            raise UserError(f"cannot read {uri}: {err}") from None
    return local_path(uri).read_bytes()


def write_bytes(uri: str, data: bytes) -> None:
    """Atomic for local paths (temp file + os.replace); GCS object writes are atomic already."""
    if uri.startswith("gs://"):
        _gcs_blob(uri).upload_from_string(data)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def join(base: str, *parts: str) -> str:
    out = base.rstrip("/")
    for p in parts:
        out = f"{out}/{p.strip('/')}"
    return out
