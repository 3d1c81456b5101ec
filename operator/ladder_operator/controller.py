"""The I/O shell around reconcile(): caches fed by watch events, a per-experiment work queue, and
the execution of actions and the status write.

Caches: experiments, their JobSets and (with Kueue) Workloads, filled by one LIST each at start and
then by kopf's watch events, and also by the answers to the operator's own writes, so that a
reconcile never runs on a view older than what the operator itself just did. Entries are only
replaced by a newer resourceVersion.

Relists: when a watch expires (410 Gone: the API server restarted, or the operator was cut off
longer than the server's history), kopf lists the kind again and hands each listed object over as
an event of type None, but says nothing of the objects the listing lacks: those were deleted
while the watch was away, and kopf sends no DELETED for them. So a listing event after start
makes the controller list the scope itself (once per burst) and replace its caches with what is
there: an entry the LIST lacks and that is not newer than it is dropped as deleted. The same
resync also runs every `resync_period` seconds, for a relist that came back empty (no event at
all) and for an object deleted between the start-up LIST and kopf's first one.

Work queue: every event marks its experiment dirty; one task per experiment runs reconciles until
it is clean, so a burst of events costs one or two reconciles, never one each, and two reconciles
of the same experiment never overlap. A global semaphore bounds the API load.

Refused objects: an object the API server refuses as invalid (400, 422) is refused again on every
retry, so it is not retried: the refusal is remembered for the experiment's generation and handed
to reconcile(), which creates nothing more and sets Degraded (ObjectRejected) with the server's
message, once. A spec edit (a new generation) or the retry annotation tries again.

Results of record: before the status write, the digest of each experiment's results in storage is
added to it (ladder_operator.results reads them incrementally, only when an evaluator reported
progress or an evaluation JobSet changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ladder_api import API_VERSION, KIND
from ladder_kube.aio import AsyncClient
from ladder_kube.errors import ApiError
from ladder_kube.ownership import STATUS_LIST_KEYS
from ladder_kube.resources import EXPERIMENT, JOBSET, WORKLOAD, resource_path
from ladder_operator import labels as lb
from ladder_operator import metrics, names
from ladder_operator.defaults import SiteDefaults
from ladder_operator.reconcile import (
    FIELD_MANAGER,
    RETRY_ANNOTATION,
    STATE_ANNOTATION,
    ApplyShared,
    CleanupCheckpoints,
    Create,
    Delete,
    Observed,
    PostEvent,
    RecordState,
    RemoveAnnotation,
    SetFinalizers,
    SetSuspend,
    event_name,
    reconcile,
)
from ladder_operator.reconcile.experiment import lenient_status
from ladder_operator.reconcile.state import read_state
from ladder_operator.reconcile.status import with_digest
from ladder_operator.reconcile.validate import Invalid, validate
from ladder_operator.results import ResultsCache, ResultsUnreadable
from ladder_operator.storage import Missing, data_prepared, store_for

log = logging.getLogger("ladder.operator")

Key = tuple[str, str]
RELIST_SETTLE_S = 1.0  # a relist's events arrive over a moment: one resync for the burst
REFUSED_AS_INVALID = (400, 422)  # the same object gets the same answer: never retried as it is


class ObjectRejected(Exception):  # noqa: N818 (reads as what happened)
    """The API server refused to create or apply a child object as invalid."""

    def __init__(self, kind: str, name: str, err: ApiError):
        super().__init__(f"the API server refused {kind} {name}: {err.message or err}")


@dataclass(frozen=True)
class Rejection:
    generation: int | None  # the experiment's generation it was refused for
    message: str


def _rv(obj: dict) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _slim_jobset(obj: dict) -> dict:
    """Only what reconcile reads: a JobSet's pod templates are large and never needed here."""
    meta = obj.get("metadata") or {}
    return {
        "metadata": {
            k: meta.get(k)
            for k in ("name", "namespace", "uid", "resourceVersion", "labels", "annotations")
            if meta.get(k) is not None
        },
        "spec": {"suspend": bool((obj.get("spec") or {}).get("suspend"))},
        "status": obj.get("status") or {},
    }


def _slim_workload(obj: dict) -> dict:
    meta = obj.get("metadata") or {}
    return {
        "metadata": {k: meta.get(k) for k in ("name", "namespace", "resourceVersion", "ownerReferences")},
        "spec": {"active": (obj.get("spec") or {}).get("active", True)},
        "status": obj.get("status") or {},
    }


def _drop_none(value):
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def covers(current, desired, key: str | None = None) -> bool:
    """Whether the live value already holds everything the operator wants to apply."""
    if isinstance(desired, dict):
        if not isinstance(current, dict):
            return False
        return all(covers(current.get(k), v, k) for k, v in desired.items())
    if isinstance(desired, list) and key in STATUS_LIST_KEYS:
        if not isinstance(current, list):
            return False
        keys = STATUS_LIST_KEYS[key]
        by_key = {tuple(c.get(k) for k in keys): c for c in current if isinstance(c, dict)}
        return all(covers(by_key.get(tuple(d.get(k) for k in keys)), d) for d in desired)
    return current == desired


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Controller:
    def __init__(
        self,
        kube: AsyncClient,
        *,
        namespaces: list[str] | None,
        kueue_version: str | None,
        concurrency: int = 8,
        store_for: Callable = store_for,
        defaults: SiteDefaults | None = None,
        resync_period: float | None = 600.0,
        data_prepared: Callable[[str], bool | None] = data_prepared,
    ):
        self.kube = kube
        self.namespaces = namespaces or []
        self.kueue = kueue_version is not None
        self.workload = WORKLOAD.at(kueue_version or WORKLOAD.version)
        self.experiments: dict[Key, dict] = {}
        self.jobsets: dict[Key, dict[str, dict]] = {}  # (ns, experiment) -> name -> slim JobSet
        self.jobset_owner: dict[Key, str] = {}  # (ns, jobset) -> experiment
        self.workloads: dict[Key, dict] = {}  # (ns, jobset name) -> slim Workload
        self.phases: dict[Key, str] = {}
        self.applied: dict[Key, dict] = {}
        self.rejected: dict[Key, Rejection] = {}
        self._dirty: set[Key] = set()
        self._tasks: dict[Key, asyncio.Task] = {}
        self._retry: dict[Key, float] = {}
        self._sem = asyncio.Semaphore(concurrency)
        self._store_for = store_for
        self._data_prepared = data_prepared
        self.defaults = defaults or SiteDefaults()
        self.results = ResultsCache()
        self.primed = False  # the caches hold the initial listing (readiness)
        self.resync_period = resync_period
        self._resyncs_wanted: set[str | None] = set()
        self._background: set[asyncio.Task] = set()
        self._closed = False

    # --- caches --------------------------------------------------------------------------------

    async def prime(self) -> None:
        """One LIST per kind before watching, so the first reconciles see existing children."""
        scopes = self.namespaces or [None]
        for ns in scopes:
            for obj in (await self.kube.list(EXPERIMENT.path(ns)))["items"]:
                self.on_experiment("ADDED", obj, kick=False)
            for obj in (await self.kube.list(JOBSET.path(ns), lb.EXPERIMENT))["items"]:
                self.on_jobset("ADDED", obj, kick=False)
            if self.kueue:
                for obj in (await self.kube.list(self.workload.path(ns)))["items"]:
                    self.on_workload("ADDED", obj, kick=False)
        for key in list(self.experiments):
            self.kick(key)
        self.primed = True
        if self.resync_period:
            self._spawn(self._resync_every(self.resync_period))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _scope(self, namespace: str) -> str | None:
        return namespace if self.namespaces else None

    def _relisted(self, namespace: str) -> None:
        """kopf is listing a kind again (its watch expired): resync that scope, once per burst."""
        scope = self._scope(namespace)
        if self.primed and scope not in self._resyncs_wanted:
            self._resyncs_wanted.add(scope)
            self._spawn(self._resync_soon(scope))

    async def _resync_soon(self, scope: str | None) -> None:
        await asyncio.sleep(RELIST_SETTLE_S)
        self._resyncs_wanted.discard(scope)
        await self._resync_logged(scope)

    async def _resync_every(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            for scope in self.namespaces or [None]:
                await self._resync_logged(scope)

    async def _resync_logged(self, scope: str | None) -> None:
        try:
            await self.resync(scope)
        except (ApiError, TimeoutError) as err:  # the next relist or period tries again
            log.warning("resync of %s failed: %s", scope or "all namespaces", err)

    def _cached(self, scope: str | None) -> list[tuple[str, dict[Key, dict], Callable]]:
        """Per kind: its collection path, its cache entries in `scope` by (namespace, name), and
        the event handler that updates them."""
        def mine(ns: str) -> bool:
            return scope is None or ns == scope

        experiments = {k: o for k, o in self.experiments.items() if mine(k[0])}
        jobsets = {(ns, n): o for (ns, _), b in self.jobsets.items() if mine(ns) for n, o in b.items()}
        kinds = [(EXPERIMENT.path(scope), experiments, self.on_experiment),
                 (JOBSET.path(scope), jobsets, self.on_jobset)]
        if self.kueue:
            workloads = {(ns, o["metadata"].get("name", "")): o
                         for (ns, _), o in self.workloads.items() if mine(ns)}
            kinds.append((self.workload.path(scope), workloads, self.on_workload))
        return kinds

    async def resync(self, scope: str | None) -> None:
        """List every kind in `scope` and make the caches say what the LISTs say: new or changed
        objects are taken in, and entries the LIST lacks (not newer than it) are dropped as
        deleted; each experiment concerned is reconciled."""
        for path, cached, handle in self._cached(scope):
            selector = lb.EXPERIMENT if handle == self.on_jobset else None
            body = await self.kube.list(path, selector)
            listed_rv = _rv(body)
            seen = set()
            for obj in body.get("items") or []:
                meta = obj.get("metadata") or {}
                seen.add((meta.get("namespace", ""), meta.get("name", "")))
                old = cached.get((meta.get("namespace", ""), meta.get("name", "")))
                if old is None or _rv(old) != _rv(obj):
                    handle("MODIFIED", obj)
            for ident, old in cached.items():
                if ident not in seen and _rv(old) <= listed_rv:
                    log.info("%s/%s is gone (deleted while the watch was away)", *ident)
                    gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(listed_rv)}}
                    handle("DELETED", gone)

    def on_experiment(self, etype: str | None, obj: dict, kick: bool = True) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if etype is None:
            self._relisted(key[0])
        old = self.experiments.get(key)
        if etype == "DELETED":
            if old is None or _rv(obj) >= _rv(old):
                self.experiments.pop(key, None)
                self.phases.pop(key, None)
                self.applied.pop(key, None)
                self.results.forget(key)
                self.rejected.pop(key, None)
                self._update_phase_gauge()
            return
        if old is not None and _rv(obj) < _rv(old):
            return
        self.experiments[key] = obj
        if kick:
            self.kick(key)

    def on_jobset(self, etype: str | None, obj: dict, kick: bool = True) -> None:
        meta = obj.get("metadata") or {}
        exp = (meta.get("labels") or {}).get(lb.EXPERIMENT)
        if not exp:
            return
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        if etype is None:
            self._relisted(ns)
        bucket = self.jobsets.setdefault((ns, exp), {})
        old = bucket.get(name)
        if old is not None and _rv(obj) < _rv(old):
            return
        if etype == "DELETED":
            bucket.pop(name, None)
            self.jobset_owner.pop((ns, name), None)
            if not bucket:
                self.jobsets.pop((ns, exp), None)
        else:
            bucket[name] = _slim_jobset(obj)
            self.jobset_owner[(ns, name)] = exp
        if kick:
            self.kick((ns, exp))

    def on_workload(self, etype: str | None, obj: dict, kick: bool = True) -> None:
        meta = obj.get("metadata") or {}
        owner = next(
            (r.get("name") for r in meta.get("ownerReferences") or [] if r.get("kind") == "JobSet"), None
        )
        if etype is None:
            self._relisted(meta.get("namespace", ""))
        if not owner:
            return
        key = (meta.get("namespace", ""), owner)
        old = self.workloads.get(key)
        if old is not None and _rv(obj) < _rv(old):
            return
        if etype == "DELETED":
            self.workloads.pop(key, None)
        else:
            self.workloads[key] = _slim_workload(obj)
        exp = self.jobset_owner.get(key)
        if exp and kick:
            self.kick((key[0], exp))

    # --- work queue ----------------------------------------------------------------------------

    def kick(self, key: Key) -> None:
        if self._closed:
            return
        self._dirty.add(key)
        task = self._tasks.get(key)
        if task is None or task.done():
            self._tasks[key] = asyncio.get_running_loop().create_task(self._worker(key))

    async def _worker(self, key: Key) -> None:
        while key in self._dirty:
            self._dirty.discard(key)
            async with self._sem:
                started = time.perf_counter()
                try:
                    await self.reconcile(key)
                    metrics.RECONCILES.labels(result="ok").inc()
                    self._retry.pop(key, None)
                except (ApiError, TimeoutError) as err:
                    metrics.RECONCILES.labels(result="error").inc()
                    delay = min(60.0, self._retry.get(key, 0.25) * 2)
                    self._retry[key] = delay
                    log.warning("reconcile of %s/%s failed (%s); retrying in %.1fs", *key, err, delay)
                    asyncio.get_running_loop().call_later(delay, self.kick, key)
                except Exception:
                    metrics.RECONCILES.labels(result="error").inc()
                    log.exception("reconcile of %s/%s crashed; retrying in 30s", *key)
                    asyncio.get_running_loop().call_later(30.0, self.kick, key)
                finally:
                    metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
        self._tasks.pop(key, None)

    async def close(self) -> None:
        """Stop queued and running reconciles (shutdown, a lost Lease): a later start redoes what
        is needed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._dirty.clear()
        tasks = list(self._tasks.values()) + list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.kube.close()

    async def idle(self) -> None:
        """Wait until no reconcile is queued or running (tests and the benchmark use it)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    # --- one reconcile -------------------------------------------------------------------------

    def observed(self, key: Key) -> Observed:
        jobsets = dict(self.jobsets.get(key, {}))
        workloads = None
        if self.kueue:
            workloads = {n: self.workloads[(key[0], n)] for n in jobsets if (key[0], n) in self.workloads}
        rejection = self.rejected.get(key)
        rejected = rejection.message if rejection else None
        return Observed(jobsets=jobsets, workloads=workloads, rejected=rejected)

    def _forget_stale_rejection(self, key: Key, raw: dict) -> None:
        """A refusal holds for the generation it was made for, until the user asks to retry."""
        rejection = self.rejected.get(key)
        meta = raw.get("metadata") or {}
        retry = RETRY_ANNOTATION in (meta.get("annotations") or {})
        if rejection is not None and (rejection.generation != meta.get("generation") or retry):
            del self.rejected[key]

    async def prepared(self, raw: dict) -> bool | None:
        """For an experiment with spec.data.prepare whose preparation is not recorded as done:
        whether data.trainUri already holds a manifest (one storage lookup, off the event loop)."""
        if not ((raw.get("spec") or {}).get("data") or {}).get("prepare"):
            return None
        if read_state(raw).prepare == "completed":
            return None
        exp = validate(raw, self.defaults)
        if isinstance(exp, Invalid) or exp.spec.data.prepare is None:
            return None
        return await asyncio.to_thread(self._data_prepared, exp.spec.data.train_uri)

    async def reconcile(self, key: Key) -> None:
        raw = self.experiments.get(key)
        if raw is None:
            return
        self._forget_stale_rejection(key, raw)
        observed = self.observed(key)
        observed.data_prepared = await self.prepared(raw)
        outcome = reconcile(raw, observed, now_rfc3339(), self.defaults)
        ns, name = key
        exp_path = EXPERIMENT.path(ns, name)
        for action in outcome.actions:
            try:
                await self._execute(key, raw, exp_path, action)
            except ObjectRejected as err:
                log.warning("%s/%s: %s; nothing more is created until the spec changes", *key, err)
                self.rejected[key] = Rejection((raw.get("metadata") or {}).get("generation"), str(err))
                self.kick(key)  # decide again knowing it: Degraded, and nothing retried
                return
        raw = self.experiments.get(key, raw)
        if outcome.status:
            desired = _drop_none(await self._with_digest(key, raw, outcome))
            if not covers(raw.get("status") or {}, desired) or self.applied.get(key) not in (None, desired):
                try:
                    updated = await self.kube.apply_status(ns, name, desired, manager=FIELD_MANAGER)
                    metrics.WRITES.labels(action="status").inc()
                    self.on_experiment("MODIFIED", updated, kick=False)
                except ApiError as err:
                    if err.status != 404:
                        raise
            self.applied[key] = desired
        self.phases[key] = outcome.phase
        self._update_phase_gauge()

    def _triggers(self, key: Key, raw: dict, runs) -> dict[int, tuple]:
        """Per width, what changes when new results may be in storage: the evaluator's progress
        report in the size's status entry and the evaluation JobSet's resourceVersion."""
        status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
        sizes = [s for s in status.get("sizes") or [] if isinstance(s, dict)]
        reports = {s.get("width"): s.get("evaluator") for s in sizes}
        jobsets = self.jobsets.get(key, {})
        out = {}
        for run in runs:
            js = jobsets.get(names.evaluation_jobset(key[1], run.width)) or {}
            rv = (js.get("metadata") or {}).get("resourceVersion")
            out[run.width] = (json.dumps(reports.get(run.width), sort_keys=True), rv)
        return out

    async def _with_digest(self, key: Key, raw: dict, outcome) -> dict:
        """The outcome's status with the digest of the results of record (ladder_api.digest)."""
        if not outcome.runs:
            return outcome.status
        status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
        uid = (raw.get("metadata") or {}).get("uid") or ""
        done = {s.get("width") for s in outcome.status.get("sizes") or [] if s.get("phase") == "Succeeded"}
        try:
            digest = await asyncio.to_thread(
                self.results.digest, key, outcome.runs, self._triggers(key, raw, outcome.runs),
                done=done, uid=uid, legacy=status.get("results"),
            )
        except ResultsUnreadable as err:
            digest = None
            await self.post_event(raw, PostEvent(
                "Warning", "ResultsUnreadable",
                f"{err}; the summary keeps what it said. Give the operator's identity read access "
                "to storage.outputUri (it reads the evaluators' results there)",
            ))
        return with_digest(outcome.status, digest, lenient_status(status))

    def _update_phase_gauge(self) -> None:
        counts: dict[str, int] = {}
        for phase in self.phases.values():
            counts[phase] = counts.get(phase, 0) + 1
        for phase in ("Pending", "Preparing", "Running", "Succeeded", "Failed", "Suspended", "Invalid"):
            metrics.EXPERIMENTS.labels(phase=phase).set(counts.get(phase, 0))

    async def _execute(self, key: Key, raw: dict, exp_path: str, action) -> None:
        ns, name = key
        if isinstance(action, RecordState):
            updated = await self.kube.merge_patch(
                exp_path,
                {
                    "metadata": {
                        "annotations": {
                            STATE_ANNOTATION: json.dumps(action.state, sort_keys=True, separators=(",", ":"))
                        }
                    }
                },
                manager=FIELD_MANAGER,
            )
            metrics.WRITES.labels(action="state").inc()
            self.on_experiment("MODIFIED", updated, kick=False)
        elif isinstance(action, ApplyShared):
            for obj in action.objs:
                await self._write_child(obj, self.kube.apply(obj, manager=FIELD_MANAGER))
                metrics.WRITES.labels(action="shared").inc()
        elif isinstance(action, Create):
            created = await self._write_child(action.obj, self.kube.create(action.obj))
            metrics.WRITES.labels(action="create").inc()
            if created is not None and created.get("kind") == "JobSet":
                self.on_jobset("ADDED", created, kick=False)
        elif isinstance(action, SetSuspend):
            if action.kind == "jobset":
                path = JOBSET.path(ns, action.name)
                updated = await self.kube.merge_patch(
                    path, {"spec": {"suspend": action.suspend}}, manager=FIELD_MANAGER
                )
                self.on_jobset("MODIFIED", updated, kick=False)
            else:
                path = self.workload.path(ns, action.name)
                updated = await self.kube.merge_patch(
                    path, {"spec": {"active": not action.suspend}}, manager=FIELD_MANAGER
                )
                self.on_workload("MODIFIED", updated, kick=False)
            metrics.WRITES.labels(action="suspend").inc()
        elif isinstance(action, Delete):
            await self.kube.delete(resource_path(action.api_version, action.plural, ns, action.name))
            metrics.WRITES.labels(action="delete").inc()
            self.jobsets.get(key, {}).pop(action.name, None)
        elif isinstance(action, PostEvent):
            await self.post_event(raw, action)
        elif isinstance(action, SetFinalizers):
            rv = (raw.get("metadata") or {}).get("resourceVersion")
            current = self.experiments.get(key, raw)
            rv = (current.get("metadata") or {}).get("resourceVersion", rv)
            ops = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
                {"op": "add", "path": "/metadata/finalizers", "value": list(action.finalizers)},
            ]
            try:
                updated = await self.kube.json_patch(exp_path, ops, manager=FIELD_MANAGER)
            except ApiError as err:
                if err.status == 404:
                    return
                if err.status in (409, 422):
                    # A newer version exists: decide again on it once the watch has brought it.
                    asyncio.get_running_loop().call_later(0.5, self.kick, key)
                    return
                raise
            metrics.WRITES.labels(action="finalizer").inc()
            if updated.get("metadata"):
                self.on_experiment("MODIFIED", updated, kick=False)
        elif isinstance(action, RemoveAnnotation):
            updated = await self.kube.merge_patch(
                exp_path, {"metadata": {"annotations": {action.key: None}}}, manager=FIELD_MANAGER
            )
            metrics.WRITES.labels(action="annotation").inc()
            self.on_experiment("MODIFIED", updated, kick=False)
        elif isinstance(action, CleanupCheckpoints):
            await self.cleanup(raw, action.uris)

    @staticmethod
    async def _write_child(obj: dict, write):
        """Await a write of a child object; an answer that it is invalid becomes ObjectRejected."""
        try:
            return await write
        except ApiError as err:
            if err.status in REFUSED_AS_INVALID:
                raise ObjectRejected(obj.get("kind", "object"), obj["metadata"].get("name", ""), err) from err
            raise

    async def cleanup(self, raw: dict, uris: tuple[str, ...]) -> None:
        """Delete each size's checkpoints; never block deletion: missing prefixes (a size that
        never saved, a bucket already gone) and errors end up in an Event, not in a retry."""
        deleted, missing, failed = 0, [], []
        for uri in uris:
            try:
                deleted += await asyncio.to_thread(self._store_for(uri).delete_prefix, uri)
            except Missing:
                missing.append(uri)
            except Exception as err:  # noqa: BLE001 (deletion must never be blocked forever)
                failed.append(f"{uri}: {err}")
        if failed:
            await self.post_event(
                raw,
                PostEvent(
                    "Warning",
                    "CheckpointCleanupFailed",
                    f"could not delete {'; '.join(failed)}; removing the finalizer anyway, "
                    "delete them by hand",
                ),
            )
        if missing and len(missing) == len(uris):
            await self.post_event(
                raw,
                PostEvent(
                    "Warning",
                    "CheckpointsMissing",
                    f"no checkpoints found under {', '.join(missing)} (bucket or prefix gone); "
                    "removing the finalizer",
                ),
            )
        elif deleted or len(missing) < len(uris):
            await self.post_event(
                raw,
                PostEvent(
                    "Normal",
                    "CheckpointsDeleted",
                    f"deleted {deleted} checkpoint objects of {len(uris) - len(missing) - len(failed)} sizes "
                    "(retention: delete)",
                ),
            )

    async def post_event(self, raw: dict, ev: PostEvent) -> None:
        meta = raw.get("metadata") or {}
        stamp = now_rfc3339()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name(
                    meta.get("name", ""), meta.get("uid", ""), meta.get("generation"), ev.reason, ev.message
                ),
                "namespace": meta.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": ev.reason,
            "message": ev.message[:1024],
            "type": ev.type,
            "source": {"component": "ladder-operator"},
            "reportingComponent": "ladder-operator",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        with contextlib.suppress(ApiError):  # an Event is best effort; never fail a reconcile for it
            await self.kube.create(body)
            metrics.WRITES.labels(action="event").inc()
