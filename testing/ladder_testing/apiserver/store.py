"""The state and semantics of the local API server, with no HTTP in it.

Everything runs on one asyncio loop, so each operation is atomic, which is exactly the
guarantee etcd's compare-and-swap gives a real API server. What it keeps as Kubernetes does:
uid, creationTimestamp, a global increasing resourceVersion (409 Conflict on a stale one),
generation bumped only by changes outside metadata and status, the status subresource
separation, finalizers (deletionTimestamp first, removal when they are gone), owner-reference
cascade on deletion, field managers for server-side apply, and a bounded event history that
watches resume from (410 Gone beyond it).
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import string
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ladder_testing.apiserver import admission, patches, selectors, strategic
from ladder_testing.apiserver.admission import WriteOptions
from ladder_testing.apiserver.errors import ApiError
from ladder_testing.apiserver.registry import ResourceDef, builtin_resources, default_crds, resource_from_crd

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
OwnerKey = tuple[str, str, str]  # (manager, operation, subresource)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Event:
    rv: int
    rkey: tuple[str, str]
    namespace: str
    name: str
    labels: dict
    fields: dict  # the selectable fields' values (selectors.field_values)
    type: str
    line: bytes  # the serialized watch event, shared by all watchers


@dataclass(eq=False)
class Watcher:
    rkey: tuple[str, str]
    namespace: str | None
    labels: Callable[[dict], bool]
    fields: Callable[[dict], bool]
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    def matches(self, ev: Event) -> bool:
        return (
            ev.rkey == self.rkey
            and (self.namespace is None or ev.namespace == self.namespace)
            and self.labels(ev.labels)
            and self.fields(ev.fields)
        )


def selectable(rdef: ResourceDef) -> tuple[str, ...]:
    """The fields besides metadata.name/namespace that objects of this kind can be selected by."""
    return selectors.BUILTIN_FIELDS.get(rdef.key, ()) + tuple(f.lstrip(".") for f in rdef.selectable_fields)


def _new_object(rdef: ResourceDef, obj: dict, apply: bool) -> dict:
    """A decoded create body with the server's metadata: name from generateName, uid, creation
    time, generation 1; no status for custom resources with a status subresource."""
    meta = obj.get("metadata") or {}
    obj["metadata"] = meta
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + "".join(
            random.choices(string.ascii_lowercase + string.digits, k=5)
        )
    obj["apiVersion"] = obj.get("apiVersion") or rdef.api_version()
    obj["kind"] = rdef.kind
    for k in (
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ):
        meta.pop(k, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now()
    meta["generation"] = 1
    if rdef.status and rdef.crd and not apply:
        obj.pop("status", None)  # custom resources drop status on create when it is a subresource
    return obj


def _candidate(rdef: ResourceDef, old: dict, new: dict, subresource: str) -> dict:
    """What an update may change: /status only the status, the main resource all but the status;
    the server's metadata (name, uid, generation, ...) and type stay, finalizers are not added to
    an object being deleted."""
    if subresource == "status":
        candidate = copy.deepcopy(old)
        if "status" in new:
            candidate["status"] = new["status"]
        else:
            candidate.pop("status", None)
        new = candidate
    elif rdef.status:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    meta = new.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise ApiError(422, "Invalid", "metadata must be an object")
    old_meta = old["metadata"]
    for k in (
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "resourceVersion",
    ):
        if k in old_meta:
            meta[k] = old_meta[k]
        else:
            meta.pop(k, None)
    new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
    if old_meta.get("deletionTimestamp"):
        added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
        if added:
            raise ApiError(
                422,
                "Invalid",
                f"metadata.finalizers: Forbidden: no new finalizers can be "
                f"added if the object is being deleted, found new finalizers {sorted(added)}",
            )
    if not meta.get("finalizers"):
        meta.pop("finalizers", None)
    return new


def _strip_volatile(obj: dict) -> dict:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    for k in ("resourceVersion", "managedFields"):
        meta.pop(k, None)
    out["metadata"] = meta
    return out


class Store:
    def __init__(self, history: int = 20000, without_groups: tuple[str, ...] = ()):
        """`without_groups`: API groups whose CRDs are not installed (e.g. a cluster without Kueue)."""
        self.rv = 1
        self.epoch = 0
        self.resources: dict[tuple[str, str], ResourceDef] = {}
        self.objects: dict[tuple[str, str], dict[Key, dict]] = {}
        self.owners: dict[str, dict[OwnerKey, set]] = {}
        self.history: deque[Event] = deque(maxlen=history)
        self.compacted_rv = 0
        self.watchers: set[Watcher] = set()
        self.requests: Counter = Counter()
        for rdef in builtin_resources():
            self.register(rdef)
        for name in ("default", "kube-system", "kube-public"):
            self.create(self.resources[("", "namespaces")], "", {"metadata": {"name": name}})
        crds = self.resources[("apiextensions.k8s.io", "customresourcedefinitions")]
        for crd in default_crds():
            if crd["spec"]["group"] in without_groups:
                continue
            self.create(crds, "", crd)

    # --- registry --------------------------------------------------------------------------

    def register(self, rdef: ResourceDef) -> None:
        self.resources[rdef.key] = rdef
        self.epoch += 1  # what is served changed: the OpenAPI documents are rebuilt
        self.objects.setdefault(rdef.key, {})

    def find(self, group: str, version: str, plural: str) -> ResourceDef:
        rdef = self.resources.get((group, plural))
        if rdef is None or version not in rdef.versions:
            raise ApiError(
                404,
                "NotFound",
                f"the server could not find the requested resource ({group or 'core'}/{version} {plural})",
            )
        return rdef

    # --- helpers ---------------------------------------------------------------------------

    def _not_found(self, rdef: ResourceDef, name: str) -> ApiError:
        gr = f"{rdef.plural}.{rdef.group}" if rdef.group else rdef.plural
        return ApiError(
            404,
            "NotFound",
            f'{gr} "{name}" not found',
            {"name": name, "group": rdef.group, "kind": rdef.plural},
        )

    def _key(self, rdef: ResourceDef, namespace: str | None, name: str) -> Key:
        return ((namespace or "") if rdef.namespaced else "", name)

    def get(self, rdef: ResourceDef, namespace: str | None, name: str) -> dict:
        obj = self.objects[rdef.key].get(self._key(rdef, namespace, name))
        if obj is None:
            raise self._not_found(rdef, name)
        return obj

    def render(self, obj: dict) -> dict:
        """The object as clients see it: managedFields filled in from the ownership sets."""
        uid = obj["metadata"].get("uid")
        owners = self.owners.get(uid) or {}
        if not owners or "managedFields" in obj["metadata"]:
            return obj  # nothing owned, or rendered already (a dry run's answer)
        out = dict(obj)
        out["metadata"] = dict(obj["metadata"])
        out["metadata"]["managedFields"] = [
            {
                "manager": m,
                "operation": op,
                "apiVersion": obj.get("apiVersion"),
                "time": obj["metadata"].get("creationTimestamp"),
                "fieldsType": "FieldsV1",
                "fieldsV1": patches.fields_v1(paths),
                **({"subresource": sub} if sub else {}),
            }
            for (m, op, sub), paths in sorted(owners.items())
            if paths
        ]
        return out

    def _emit(self, rdef: ResourceDef, etype: str, obj: dict) -> None:
        line = json.dumps({"type": etype, "object": self.render(obj)}, separators=(",", ":")).encode() + b"\n"
        meta = obj["metadata"]
        ev = Event(
            int(meta["resourceVersion"]),
            rdef.key,
            meta.get("namespace", ""),
            meta["name"],
            dict(meta.get("labels") or {}),
            selectors.field_values(obj, selectable(rdef)),
            etype,
            line,
        )
        if len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        self.history.append(ev)
        for w in list(self.watchers):
            if w.matches(ev):
                w.queue.put_nowait(ev)

    def compact(self) -> None:
        """Forget all history (tests use it to provoke 410 Gone)."""
        if self.history:
            self.compacted_rv = self.history[-1].rv
        self.history.clear()

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    # --- create ----------------------------------------------------------------------------

    def create(
        self,
        rdef: ResourceDef,
        namespace: str | None,
        body: dict,
        *,
        field_manager: str | None = None,
        apply: bool = False,
        opts: WriteOptions | None = None,
    ) -> dict:
        opts = opts or WriteOptions()
        if isinstance(body, dict) and body.get("kind") and body["kind"] != rdef.kind:
            raise ApiError(
                400, "BadRequest", f"the body's kind {body['kind']!r} does not match {rdef.kind!r}"
            )
        obj = _new_object(rdef, admission.decode(rdef, copy.deepcopy(body), opts, apply=apply), apply)
        meta, name = obj["metadata"], obj["metadata"].get("name")
        namespace = self._create_namespace(rdef, namespace, meta)
        admission.admit(rdef, obj, None)
        key = self._key(rdef, namespace, name)
        if key in self.objects[rdef.key]:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{rdef.group_resource} "{name}" already exists',
                {"name": name, "group": rdef.group, "kind": rdef.plural},
            )
        if opts.dry_run:
            return obj  # validated and defaulted, never stored: no resourceVersion, no event
        if field_manager:
            scope = False if rdef.status else None
            self.owners[meta["uid"]] = {
                (field_manager, "Apply" if apply else "Update", ""): patches.object_field_set(
                    obj, rdef.schema, scope
                )
            }
        try:
            admission.check_size(self.render(obj))
        except ApiError:
            self.owners.pop(meta["uid"], None)
            raise
        meta["resourceVersion"] = self._next_rv()
        self.objects[rdef.key][key] = obj
        if rdef.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self.register(resource_from_crd(obj))
        self._emit(rdef, "ADDED", obj)
        return obj

    def _create_namespace(self, rdef: ResourceDef, namespace: str | None, meta: dict) -> str | None:
        """The namespace a new object goes to; 400/404/403 as a real server answers."""
        if not rdef.namespaced:
            meta.pop("namespace", None)
            return None
        if meta.get("namespace") and namespace and meta["namespace"] != namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        namespace = namespace or meta.get("namespace") or "default"
        ns_obj = self.objects[("", "namespaces")].get(("", namespace))
        if ns_obj is None:
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )
        meta["namespace"] = namespace
        return namespace

    # --- list ------------------------------------------------------------------------------

    def list(
        self, rdef: ResourceDef, namespace: str | None, labels=None, fields=None
    ) -> tuple[list[dict], str]:
        items = []
        for (ns, _name), obj in sorted(self.objects[rdef.key].items()):
            if namespace and rdef.namespaced and ns != namespace:
                continue
            if labels and not labels(obj["metadata"].get("labels") or {}):
                continue
            if fields and not fields(selectors.field_values(obj, selectable(rdef))):
                continue
            items.append(obj)
        return items, str(self.rv)

    # --- update ----------------------------------------------------------------------------

    def _scope(self, rdef: ResourceDef, subresource: str) -> bool | None:
        if subresource == "status":
            return True
        return False if rdef.status else None

    def _write(
        self,
        rdef: ResourceDef,
        old: dict,
        new: dict,
        subresource: str,
        *,
        manager: str | None,
        expected_rv: str | None,
        opts: WriteOptions,
        apply: bool = False,
    ) -> dict:
        """Common path of PUT, PATCH and apply once the candidate object is known."""
        if expected_rv and expected_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f"Operation cannot be fulfilled on {rdef.plural} "
                f'"{old["metadata"]["name"]}": the object has been modified; please apply your '
                "changes to the latest version and try again",
                {"name": old["metadata"]["name"], "group": rdef.group, "kind": rdef.plural},
            )
        if not isinstance(new, dict):
            raise ApiError(422, "Invalid", "the patched object is not an object")
        new = _candidate(
            rdef, old, admission.decode(rdef, copy.deepcopy(new), opts, apply=apply), subresource
        )
        meta, old_meta = new["metadata"], old["metadata"]
        reset = self._requested_owners(old, meta.pop("managedFields", None))
        admission.admit(rdef, new, old)
        if _strip_volatile(new) == _strip_volatile(old) and reset is None:
            return old  # a no-op write changes nothing, not even the resourceVersion
        if reset is not None:
            self.owners[old_meta["uid"]] = reset  # the client set managedFields: they are used as sent
        elif manager:
            changed = patches.changed_paths(old, new, rdef.schema, self._scope(rdef, subresource))
            self._take_ownership(old_meta["uid"], (manager, "Update", subresource), changed)
        body_keys = (set(old) | set(new)) - {"metadata", "status", "apiVersion", "kind"}
        if any(old.get(k) != new.get(k) for k in body_keys):
            meta["generation"] = int(old_meta.get("generation") or 1) + 1
        if opts.dry_run:
            return new  # what the write would store; the caller restores field ownership
        admission.check_size(self.render(new))  # on an error the caller restores field ownership
        meta["resourceVersion"] = self._next_rv()
        key = self._key(rdef, meta.get("namespace"), meta["name"])
        self.objects[rdef.key][key] = new
        if rdef.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self.register(resource_from_crd(new))
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(rdef, key)
            return new
        self._emit(rdef, "MODIFIED", new)
        return new

    def _requested_owners(self, old: dict, requested) -> dict[OwnerKey, set] | None:
        """The ownership a write's own `metadata.managedFields` asks for, or None when it leaves
        them alone (absent, empty, or as they are). `[{}]` clears them, as on a real server."""
        if not requested or not isinstance(requested, list):
            return None
        if requested == self.render(old)["metadata"].get("managedFields"):
            return None
        owners: dict[OwnerKey, set] = {}
        for entry in requested:
            if isinstance(entry, dict) and entry.get("manager"):
                key = (entry["manager"], entry.get("operation") or "Update", entry.get("subresource") or "")
                owners.setdefault(key, set()).update(
                    patches.paths_from_fields_v1(entry.get("fieldsV1") or {})
                )
        return owners

    def _take_ownership(self, uid: str, me: OwnerKey, paths: set) -> None:
        owners = self.owners.setdefault(uid, {})
        for other, theirs in owners.items():
            if other != me:
                theirs -= {p for p in theirs if any(patches.is_prefix(c, p) for c in paths)}
        if paths:
            owners.setdefault(me, set()).update(paths)

    def replace(
        self,
        rdef: ResourceDef,
        namespace: str | None,
        name: str,
        body: dict,
        subresource: str = "",
        *,
        field_manager: str | None = None,
        opts: WriteOptions | None = None,
    ) -> dict:
        opts = opts or WriteOptions()
        old = self.get(rdef, namespace, name)
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be a JSON object")
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        return self._guarded(
            old,
            opts,
            lambda: self._write(
                rdef,
                old,
                body,
                subresource,
                manager=field_manager or "unknown",
                expected_rv=meta.get("resourceVersion"),
                opts=opts,
            ),
        )

    def _guarded(self, old: dict, opts: WriteOptions, write: Callable[[], dict]) -> dict:
        """Run a write; field ownership changes only if it is stored (not on an error, not on a dry
        run, whose answer shows the ownership it would have had)."""
        uid = old["metadata"]["uid"]
        saved = {k: set(v) for k, v in self.owners[uid].items()} if uid in self.owners else None

        def restore() -> None:
            if saved is None:
                self.owners.pop(uid, None)
            else:
                self.owners[uid] = saved

        try:
            result = write()
        except Exception:
            restore()
            raise
        if opts.dry_run:
            result = self.render(result) if result is not old else result
            restore()
        return result

    def patch(
        self,
        rdef: ResourceDef,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch,
        subresource: str = "",
        *,
        field_manager: str | None = None,
        force: bool = False,
        opts: WriteOptions | None = None,
    ) -> dict:
        opts = opts or WriteOptions()
        if patch_type == "apply":
            return self.apply(
                rdef, namespace, name, patch, subresource, field_manager=field_manager, force=force, opts=opts
            )
        old = self.get(rdef, namespace, name)
        current = self.render(old)  # patches see managedFields, as on a real server
        try:
            if patch_type == "json":
                new = patches.apply_json_patch(current, patch)
            elif patch_type == "merge":
                new = patches.apply_merge_patch(current, patch)
            elif patch_type == "strategic" and not rdef.crd:
                node, defs = admission.body_schema(rdef)
                new = strategic.apply_strategic_patch(current, patch, node, defs)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {patch_type!r}")
        except patches.PatchError as err:
            raise ApiError(422, "Invalid", str(err)) from err
        expected = (new.get("metadata") or {}).get("resourceVersion") if isinstance(new, dict) else None
        if expected == old["metadata"]["resourceVersion"]:
            expected = None
        if isinstance(patch, dict) and "resourceVersion" not in (patch.get("metadata") or {}):
            expected = None
        return self._guarded(
            old,
            opts,
            lambda: self._write(
                rdef,
                old,
                new,
                subresource,
                manager=field_manager or "unknown",
                expected_rv=expected,
                opts=opts,
            ),
        )

    def apply(
        self,
        rdef: ResourceDef,
        namespace: str | None,
        name: str,
        applied,
        subresource: str = "",
        *,
        field_manager: str | None,
        force: bool = False,
        opts: WriteOptions | None = None,
    ) -> dict:
        opts = opts or WriteOptions()
        if not field_manager:
            raise ApiError(400, "BadRequest", "PATCH, application/apply-patch+yaml: fieldManager is required")
        if not isinstance(applied, dict) or not applied.get("apiVersion") or not applied.get("kind"):
            raise ApiError(400, "BadRequest", "an applied configuration needs apiVersion and kind")
        ameta = applied.get("metadata") or {}
        if ameta.get("name") and ameta["name"] != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        key = self._key(rdef, namespace, name)
        old = self.objects[rdef.key].get(key)
        if old is None:
            if subresource:
                raise self._not_found(rdef, name)
            body = copy.deepcopy(applied)
            body.setdefault("metadata", {})["name"] = name
            if rdef.status:
                body.pop("status", None)
            return self.create(rdef, namespace, body, field_manager=field_manager, apply=True, opts=opts)
        applied = admission.decode(rdef, applied, opts, apply=True)
        return self._guarded(
            old, opts, lambda: self._apply_to(rdef, old, applied, subresource, field_manager, force, opts)
        )

    def _apply_to(
        self,
        rdef: ResourceDef,
        old: dict,
        applied: dict,
        subresource: str,
        field_manager: str,
        force: bool,
        opts: WriteOptions,
    ) -> dict:
        """Server-side apply onto an existing object: conflicts, merge, removal of what the
        manager no longer applies."""
        ameta = applied.get("metadata") or {}
        scope = self._scope(rdef, subresource)
        me: OwnerKey = (field_manager, "Apply", subresource)
        applied_set = patches.object_field_set(applied, rdef.schema, scope)
        owners = self.owners.setdefault(old["metadata"]["uid"], {})
        conflicts = []
        cache: dict = {}
        for other, theirs in owners.items():
            if other == me:
                continue
            for p in applied_set & theirs:
                if p[-1].startswith("k:"):
                    continue  # a list-map entry is shared by whoever sets fields in it
                mine = patches.get_path(applied, p, rdef.schema, cache)
                if patches.get_path(old, p, rdef.schema, cache) != mine:
                    conflicts.append((other[0], p))
        if conflicts and not force:
            lines = "; ".join(
                f'conflict with "{m}": .{".".join(e[2:] for e in p)}' for m, p in conflicts[:10]
            )
            raise ApiError(
                409,
                "Conflict",
                f"Apply failed with {len(conflicts)} conflict(s): {lines}",
                {
                    "causes": [
                        {
                            "reason": "FieldManagerConflict",
                            "message": f'conflict with "{m}"',
                            "field": "." + ".".join(e[2:] for e in p),
                        }
                        for m, p in conflicts
                    ]
                },
            )
        for other_mgr, p in conflicts:
            for other, theirs in owners.items():
                if other[0] == other_mgr and other != me:
                    theirs.discard(p)
        new = copy.deepcopy(old)
        root = {"properties": {**(rdef.schema.get("properties") or {}), "metadata": patches.METADATA_SCHEMA}}
        for k, v in applied.items():
            if k in ("apiVersion", "kind"):
                continue
            if (scope is True and k != "status") or (scope is False and k == "status"):
                continue
            if k == "metadata":
                v = {mk: mv for mk, mv in (v or {}).items() if mk not in patches.SYSTEM_METADATA}
            new[k] = patches.merge_applied(new.get(k, patches.MISSING), v, patches.child_schema(root, k))
        # Everything another manager owns something under (each prefix of their paths, once).
        held = {q[:i] for o, paths in owners.items() if o != me for q in paths for i in range(1, len(q) + 1)}
        # Shortest first: a list-map entry goes whole (while its key is still there to find it by).
        stale = sorted(owners.get(me, set()) - applied_set, key=len)
        for p in stale:
            if p in held:
                continue
            patches.remove_path(new, p, rdef.schema)
        owners[me] = applied_set
        return self._write(
            rdef,
            old,
            new,
            subresource,
            manager=None,
            expected_rv=ameta.get("resourceVersion"),
            opts=opts,
            apply=True,
        )

    # --- delete ----------------------------------------------------------------------------

    def delete(
        self,
        rdef: ResourceDef,
        namespace: str | None,
        name: str,
        options: dict | None = None,
        opts: WriteOptions | None = None,
    ) -> dict:
        options = options or {}
        obj = self.get(rdef, namespace, name)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != obj["metadata"]["uid"]:
            raise ApiError(409, "Conflict", "Precondition failed: UID in precondition does not match")
        if pre.get("resourceVersion") and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "Precondition failed: resourceVersion does not match")
        if opts and opts.dry_run:
            if obj["metadata"].get("finalizers") and not obj["metadata"].get("deletionTimestamp"):
                obj = copy.deepcopy(obj)
                obj["metadata"]["deletionTimestamp"] = now()
            return obj
        key = self._key(rdef, namespace, name)
        orphan = options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents") is True
        if obj["metadata"].get("finalizers"):
            if not obj["metadata"].get("deletionTimestamp"):
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = now()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if rdef.group:
                    new["metadata"]["generation"] = int(obj["metadata"].get("generation") or 1) + 1
                new["metadata"]["resourceVersion"] = self._next_rv()
                self.objects[rdef.key][key] = new
                self._emit(rdef, "MODIFIED", new)
                if rdef.key == ("", "namespaces"):
                    self._delete_namespace_contents(name)
                return new
            return obj
        self._remove(rdef, key, orphan=orphan)
        return obj

    def _remove(self, rdef: ResourceDef, key: Key, orphan: bool = False) -> None:
        obj = self.objects[rdef.key].pop(key)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._emit(rdef, "DELETED", obj)
        uid = obj["metadata"]["uid"]
        self.owners.pop(uid, None)
        if rdef.key == ("", "namespaces"):
            self._delete_namespace_contents(key[1])
        if not orphan:
            self._cascade(uid, obj["metadata"].get("namespace"))

    def _cascade(self, uid: str, namespace: str | None) -> None:
        """Garbage collection: dependents whose owner is gone are deleted (background policy)."""
        for rkey, objs in list(self.objects.items()):
            rdef = self.resources.get(rkey)
            if rdef is None:
                continue
            for key, obj in list(objs.items()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == uid for r in refs) and key in objs:
                    remaining = [r for r in refs if r.get("uid") != uid]
                    if remaining and any(self._uid_exists(r.get("uid")) for r in remaining):
                        new = copy.deepcopy(obj)
                        new["metadata"]["ownerReferences"] = remaining
                        new["metadata"]["resourceVersion"] = self._next_rv()
                        objs[key] = new
                        self._emit(rdef, "MODIFIED", new)
                        continue
                    self.delete(rdef, key[0] or None, key[1])

    def _uid_exists(self, uid: str | None) -> bool:
        return any(o["metadata"].get("uid") == uid for objs in self.objects.values() for o in objs.values())

    def _delete_namespace_contents(self, namespace: str) -> None:
        for rkey, objs in list(self.objects.items()):
            rdef = self.resources.get(rkey)
            if rdef is None or not rdef.namespaced:
                continue
            for key in [k for k in objs if k[0] == namespace]:
                if key in objs:
                    self.delete(rdef, namespace, key[1])
        ns = self.objects[("", "namespaces")].get(("", namespace))
        if (
            ns is not None
            and ns["metadata"].get("deletionTimestamp")
            and not ns["metadata"].get("finalizers")
        ):
            self._remove(self.resources[("", "namespaces")], ("", namespace))

    # --- watch -----------------------------------------------------------------------------

    def watch(
        self, rdef: ResourceDef, namespace: str | None, labels, fields, since: str | None, initial: bool
    ) -> tuple[Watcher, list[bytes]]:
        """Register a watcher; return it with the events it must see first (replayed or
        synthesized). Raises 410 when `since` is older than the kept history."""
        w = Watcher(
            rdef.key,
            namespace if rdef.namespaced else None,
            labels or (lambda _l: True),
            fields or (lambda _o: True),
        )
        backlog: list[bytes] = []
        if since not in (None, "", "0") and not initial:
            try:
                since_rv = int(since)
            except ValueError as err:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion {since!r}") from err
            if since_rv < self.compacted_rv:
                raise ApiError(410, "Expired", f"too old resource version: {since_rv} ({self.compacted_rv})")
            backlog = [ev.line for ev in self.history if ev.rv > since_rv and w.matches(ev)]
        else:
            items, _rv = self.list(rdef, namespace, labels, fields)
            backlog = [
                json.dumps({"type": "ADDED", "object": self.render(o)}, separators=(",", ":")).encode()
                + b"\n"
                for o in items
            ]
            if initial:
                backlog.append(
                    json.dumps(
                        {
                            "type": "BOOKMARK",
                            "object": {
                                "kind": rdef.kind,
                                "apiVersion": rdef.api_version(),
                                "metadata": {
                                    "resourceVersion": str(self.rv),
                                    "annotations": {"k8s.io/initial-events-end": "true"},
                                },
                            },
                        }
                    ).encode()
                    + b"\n"
                )
        self.watchers.add(w)
        return w, backlog
