"""The controller's seam for deleting an experiment's checkpoints when its retention says so
(tests inject their own `store_for`). The work is ladder_api.storage.delete_prefix: local paths
and gs:// alike, raising `Missing` when the bucket or directory does not exist, which the
controller reports in an Event without blocking the finalizer."""

from __future__ import annotations

from typing import Protocol

from ladder_api import storage
from ladder_api.storage import Missing

__all__ = ["CheckpointStore", "Missing", "PrefixStore", "store_for"]


class CheckpointStore(Protocol):
    def delete_prefix(self, uri: str) -> int:
        """Delete every object under `uri`; return how many were deleted."""


class PrefixStore:
    def delete_prefix(self, uri: str) -> int:
        return storage.delete_prefix(uri)


def store_for(uri: str) -> CheckpointStore:
    return PrefixStore()
