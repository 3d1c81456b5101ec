"""The controller's seams to storage: whether a prepared training set exists (`data_prepared`),
and deleting an experiment's checkpoints when its retention says so (tests inject their own
`store_for`). The work is ladder_api.storage.delete_prefix: local paths
and gs:// alike, raising `Missing` when the bucket or directory does not exist, which the
controller reports in an Event without blocking the finalizer."""

from __future__ import annotations

import logging
from typing import Protocol

from ladder_api import artifacts, storage
from ladder_api.storage import Missing

__all__ = ["CheckpointStore", "Missing", "PrefixStore", "data_prepared", "store_for"]

log = logging.getLogger("ladder.operator")


def data_prepared(train_uri: str) -> bool | None:
    """Whether data.trainUri holds a prepared set's manifest; None when the storage does not
    answer (reconcile then goes by the prepare JobSet and its record, never by a guess)."""
    try:
        return artifacts.data_prepared(train_uri)
    except Exception as err:  # a bucket we may not read, the network: say so, decide without it
        log.warning("cannot tell whether %s holds a prepared data set: %s", train_uri, err)
        return None


class CheckpointStore(Protocol):
    def delete_prefix(self, uri: str) -> int:
        """Delete every object under `uri`; return how many were deleted."""


class PrefixStore:
    def delete_prefix(self, uri: str) -> int:
        return storage.delete_prefix(uri)


def store_for(uri: str) -> CheckpointStore:
    return PrefixStore()
