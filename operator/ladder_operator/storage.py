"""Deleting an experiment's checkpoints when its retention says so, behind one small interface.

`delete_prefix(uri)` removes everything under a gs:// prefix (google-cloud-storage, which honours
STORAGE_EMULATOR_HOST for the local fake-gcs-server) or a local directory. A missing bucket or
directory is not an error worth blocking deletion: the caller gets `Missing` and says so in an
Event, and the finalizer goes regardless.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Protocol


class Missing(Exception):  # noqa: N818 (reads as a state at the call site)
    """The bucket or directory does not exist."""


class CheckpointStore(Protocol):
    def delete_prefix(self, uri: str) -> int:
        """Delete every object under `uri`; return how many were deleted."""


class LocalStore:
    def delete_prefix(self, uri: str) -> int:
        path = Path(uri.removeprefix("file://"))
        if not path.exists():
            raise Missing(f"{path} does not exist")
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count


class GcsStore:
    def __init__(self, client=None):
        self._client = client

    def client(self):
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client()
        return self._client

    def delete_prefix(self, uri: str) -> int:
        from google.api_core import exceptions

        bucket_name, _, prefix = uri.removeprefix("gs://").partition("/")
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        try:
            bucket = self.client().bucket(bucket_name)
            blobs = list(self.client().list_blobs(bucket, prefix=prefix))
            for blob in blobs:
                with contextlib.suppress(exceptions.NotFound):
                    blob.delete()
            return len(blobs)
        except exceptions.NotFound as err:
            raise Missing(f"bucket gs://{bucket_name} does not exist") from err


def store_for(uri: str) -> CheckpointStore:
    return GcsStore() if uri.startswith("gs://") else LocalStore()
