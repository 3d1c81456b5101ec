"""Leader election on a coordination.k8s.io/v1 Lease: with two operator processes (a second replica
by mistake, an upgrade that overlaps, a pod whose node went dark) exactly one acts, the other
stands by and takes over within the Lease's duration once the first stops renewing.

The rules are client-go's (what every Kubernetes controller uses):

- A Lease whose holder is someone else is taken only after it went unrenewed for
  `leaseDurationSeconds`, measured on this process's own monotonic clock from the moment it last
  saw the Lease change, so clocks of different machines are never compared.
- Every write carries the resourceVersion it read (a JSON patch that tests it): of two processes
  taking an expired Lease at once, one write fails and that process goes on standing by.
- The leader renews every `retry_s`; when it has not managed to for `renew_deadline_s` (shorter
  than the duration), or sees another holder, it has lost: it must stop acting at once, before
  anyone else may take the Lease. The operator then exits, and its restart stands by.
- On a clean shutdown the leader releases the Lease (empty holder), so the standby takes over
  at once rather than after the duration.

The same identity (the pod's name, from POD_NAME) takes its own Lease back at once: that is the
container restarting inside its pod, where the old process is gone.

The elector has its own client (and thread), so renewals never queue behind reconciles.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ladder_kube.aio import AsyncClient
from ladder_kube.errors import ApiError
from ladder_kube.resources import LEASE
from ladder_operator import metrics

log = logging.getLogger("ladder.operator.leader")

DEFAULT_NAME = "ladder-operator"
DEFAULT_DURATION_S = 15.0
MANAGER = "ladder-operator-leader"


def default_identity() -> str:
    """The pod's name in a cluster (stable across container restarts), else host and process."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    identity: str
    name: str = DEFAULT_NAME
    duration_s: float = DEFAULT_DURATION_S

    @property
    def renew_deadline_s(self) -> float:
        return self.duration_s * 2 / 3

    @property
    def retry_s(self) -> float:
        return self.duration_s / 7.5


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeadershipLost(Exception):  # noqa: N818 (reads as what happened)
    pass


class Elector:
    def __init__(self, kube: AsyncClient, config: LeaseConfig, clock: Callable[[], float] = time.monotonic):
        self.kube, self.config, self.clock = kube, config, clock
        self.path = LEASE.path(config.namespace, config.name)
        self.where = f"{config.namespace}/{config.name}"
        self._seen: dict | None = None  # the Lease's spec as last read
        self._seen_at = 0.0  # when (our clock) it last changed
        self.leading = False

    def _new_spec(self, old: dict | None) -> dict:
        mine = old is not None and old.get("holderIdentity") == self.config.identity
        now = _micro_time()
        transitions = int((old or {}).get("leaseTransitions") or 0)
        return {
            "holderIdentity": self.config.identity,
            "leaseDurationSeconds": max(1, round(self.config.duration_s)),
            "acquireTime": (old or {}).get("acquireTime") if mine else now,
            "renewTime": now,
            "leaseTransitions": transitions if mine or old is None else transitions + 1,
        }

    def _held_by_another(self, spec: dict) -> bool:
        holder = spec.get("holderIdentity")
        if not holder or holder == self.config.identity:
            return False
        duration = float(spec.get("leaseDurationSeconds") or self.config.duration_s)
        return self.clock() < self._seen_at + duration

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: True when this process holds the Lease afterwards."""
        try:
            lease = await self.kube.get(self.path)
        except ApiError as err:
            if err.status != 404:
                raise
            body = {"apiVersion": LEASE.api_version, "kind": LEASE.kind,
                    "metadata": {"name": self.config.name, "namespace": self.config.namespace},
                    "spec": self._new_spec(None)}
            created = await self.kube.create(body)
            return self._took(created)
        spec = lease.get("spec") or {}
        if spec != self._seen:
            self._seen, self._seen_at = spec, self.clock()
        if self._held_by_another(spec):
            return False
        try:
            updated = await self._write(lease, self._new_spec(spec))
        except ApiError as err:
            if err.status in (409, 422):  # someone wrote it since we read it: read again next time
                return False
            raise
        return self._took(updated)

    async def _write(self, lease: dict, spec: dict) -> dict:
        """Replace the spec of the Lease as read, or fail (409/422) if it changed since."""
        read = lease["metadata"]["resourceVersion"]
        ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": read},
               {"op": "add", "path": "/spec", "value": spec}]
        return await self.kube.json_patch(self.path, ops, manager=MANAGER)

    def _took(self, lease: dict | None) -> bool:
        if lease is None:  # created by another process meanwhile
            return False
        self._seen, self._seen_at = lease.get("spec") or {}, self.clock()
        return True

    async def acquire(self) -> None:
        """Return once this process holds the Lease; until then stand by, trying every retry_s."""
        told = False
        while True:
            try:
                if await self.try_acquire_or_renew():
                    break
            except (ApiError, TimeoutError) as err:
                log.warning("cannot read or write Lease %s: %s", self.where, err)
            if not told:
                holder = (self._seen or {}).get("holderIdentity")
                log.info("standing by: Lease %s is held by %s", self.where, holder)
                told = True
            await asyncio.sleep(self.config.retry_s)
        self.leading = True
        metrics.LEADER.set(1)
        log.info("leading: holds Lease %s as %s", self.where, self.config.identity)

    async def hold(self) -> None:
        """Renew until the Lease is lost; then raise LeadershipLost (the caller stops acting)."""
        renewed = self.clock()
        while True:
            await asyncio.sleep(self.config.retry_s)
            try:
                if await self.try_acquire_or_renew():
                    renewed = self.clock()
                    continue
            except (ApiError, TimeoutError) as err:
                log.warning("renewing Lease %s failed: %s", self.where, err)
            holder = (self._seen or {}).get("holderIdentity")
            if holder not in (None, "", self.config.identity):
                self._lost(f"{holder} holds it now")
            if self.clock() - renewed > self.config.renew_deadline_s:
                self._lost(f"not renewed for {self.config.renew_deadline_s:.0f}s")

    def _lost(self, why: str) -> None:
        self.leading = False
        metrics.LEADER.set(0)
        raise LeadershipLost(f"lost Lease {self.where}: {why}")

    async def release(self) -> None:
        """Give the Lease up (clean shutdown): the standby need not wait for it to expire."""
        if not self.leading:
            return
        self.leading = False
        metrics.LEADER.set(0)
        try:
            lease = await self.kube.get(self.path)
            if (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1,
                    "renewTime": _micro_time()}
            await self._write(lease, spec)
            log.info("released Lease %s", self.where)
        except ApiError as err:  # it expires on its own
            log.warning("could not release Lease %s: %s", self.where, err)
