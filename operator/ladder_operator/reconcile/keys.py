"""The annotations, finalizer, field manager and Event names the operator owns on an experiment."""

from __future__ import annotations

import hashlib

from ladder_operator import labels as lb
from ladder_operator import names

STATE_ANNOTATION = "ladder.dev/operator-state"
# `kubectl annotate sx NAME ladder.dev/retry-failed=1`: retry failed sizes and re-activate
# Workloads that Kueue deactivated (e.g. after its requeuing limit).
RETRY_ANNOTATION = "ladder.dev/retry-failed"
EVAL_HASH_ANNOTATION = "ladder.dev/evaluation-hash"
FINALIZER = "ladder.dev/checkpoint-cleanup"
FIELD_MANAGER = "ladder-operator"


def event_name(experiment: str, uid: str, generation: int | None, reason: str, message: str) -> str:
    """Deterministic Event names: posting the same transition twice (after a crash between the
    Event and the status write) is a 409, not a duplicate. The generation is part of the name, so
    the same transition after a spec change (suspend, resume, suspend) is a new Event."""
    digest = hashlib.sha256(f"{uid}/{generation}/{reason}/{message}".encode()).hexdigest()[:16]
    return names.fit(experiment, f".{digest}")


def is_ours(obj: dict) -> str | None:
    """The experiment a child object belongs to (by label), or None."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(lb.EXPERIMENT)
