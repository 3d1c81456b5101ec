"""The one status writer: a writer's share of an object's status, by server-side apply.

Why server-side apply: `status.sizes` and `status.conditions` are list-maps (keyed by width and
type; ladder_api.crd.LIST_MAPS), so the server merges each apply entry by entry and records which
field manager owns which fields. The evaluators (their progress reports), the trainers and the
operator write side by side without reading first and without resourceVersion retries. A JSON
merge patch would replace whole lists and lose the other writers' entries: never that.

The ownership rule, and why a field manager per process. An apply states everything its manager
owns: whatever that manager applied before and now leaves out is deleted, unless another manager
also owns it. Two processes sharing a manager therefore delete each other's entries: after a
JobSet restart the old pod (still in its grace period) applies its set, which lacks what the new
pod wrote, and the server removes those; the new pod's next apply removes the old pod's late
entries in turn. Reading before writing cannot fix it (the two writes race). So a StatusWriter:

1. writes under a manager no other process uses, `<base>-<incarnation>` (ladder_kube.ownership),
   new in every process whatever the restart policy, ordered by start time;
2. applies only what this process wrote, accumulated: every apply carries every entry of this
   process's earlier applies (merged by list-map key), so an apply never removes anything;
3. never applies what an earlier process wrote: that stays owned by the earlier process's manager,
   which nobody applies again, so nothing deletes it;
4. applies without force, so that a field another manager holds with another value is a 409
   conflict rather than a silent takeover; then the newer incarnation wins: the writer drops from
   its share the fields that newer incarnations of itself own (read from managedFields) and
   applies again with force, taking over only from older ones. An old pod applying late thus
   never reverts what its replacement measured or reported, and a replacement re-measuring an
   entry takes it over. (A newer write landing between that read and the forced apply is taken
   over once, until the newer writer's next apply: a window of one round trip.)

The price is one managedFields entry per process that ever wrote, bounded by the JobSet's
restarts, and a read plus a second apply when a conflict happens (only while incarnations overlap).

The operator is the other kind of writer: one replica, the only owner of its fields, and it wants
apply's removal (a condition it no longer sets must go), so it applies its complete share each
time with `apply_status` under its fixed manager.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable

from ladder_kube.client import Client
from ladder_kube.errors import ApiError
from ladder_kube.ownership import STATUS_LIST_KEYS, incarnation_manager, merge_fragment, yield_to_newer
from ladder_kube.resources import EXPERIMENT, Resource
from ladder_kube.retry import Backoff, call_with_retry

__all__ = ["STATUS_LIST_KEYS", "StatusWriter", "apply_status", "check_finite", "status_body"]


def status_body(namespace: str, name: str, fragment: dict, resource: Resource = EXPERIMENT) -> dict:
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": {"name": name, "namespace": namespace},
        "status": fragment,
    }


def apply_status(
    client: Client,
    namespace: str,
    name: str,
    fragment: dict,
    *,
    manager: str,
    resource: Resource = EXPERIMENT,
    force: bool = True,
) -> dict:
    """Apply `fragment` as the complete status share of `manager`. Returns the object as the
    server has it after the apply."""
    check_finite(fragment)
    body = status_body(namespace, name, fragment, resource)
    return client.apply(body, manager=manager, subresource="status", force=force)


def check_finite(value, path: str = "status") -> None:
    """ValueError naming the first NaN or infinity: JSON has no such numbers, a real API server
    answers 400 to them, and a writer that accumulated one would fail every later apply."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path} is {value}: the status takes only finite numbers")
    if isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_finite(v, f"{path}[{i}]")


class StatusWriter:
    """This process's share of one object's status (see the module docstring for the rule)."""

    def __init__(
        self,
        client: Client,
        namespace: str,
        name: str,
        manager_base: str,
        *,
        resource: Resource = EXPERIMENT,
        backoff: Backoff | None = None,
        incarnation: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.client, self.namespace, self.name, self.resource = client, namespace, name, resource
        self.manager = incarnation_manager(manager_base, incarnation)
        self.backoff, self._sleep, self._rng = backoff, sleep, rng
        self._owned: dict = {}
        self._lock = threading.Lock()

    def _retried(self, what: str, fn):
        return call_with_retry(
            fn, self.backoff, what=f"{what} of {self.namespace}/{self.name}", sleep=self._sleep, rng=self._rng
        )

    def _get(self) -> dict:
        return self.client.get(self.resource.path(self.namespace, self.name, "status"))

    def read(self) -> dict:
        """The object as it is now (its /status subresource), retried like a write."""
        return self._retried("status read", self._get)

    def apply(self, fragment: dict) -> dict:
        """Add `fragment` to this process's share and apply the whole share."""
        check_finite(fragment)
        with self._lock:
            self._owned = merge_fragment(self._owned, fragment)
            return self._retried("status apply", self._apply_share)

    def _apply_share(self) -> dict:
        try:
            return self._apply(force=False)
        except ApiError as err:
            if not err.field_conflict:
                raise
        managed = (self._get().get("metadata") or {}).get("managedFields") or []
        self._owned = yield_to_newer(self._owned, managed, self.manager)
        return self._apply(force=True)

    def _apply(self, force: bool) -> dict:
        return apply_status(
            self.client,
            self.namespace,
            self.name,
            self._owned,
            manager=self.manager,
            resource=self.resource,
            force=force,
        )
