"""HTTP front of the local API server: Kubernetes REST paths, discovery, watch streams.

Paths are parsed by hand (one catch-all route) because the API's URL grammar is small but
positional: `/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]` and the same under `/apis/GROUP/VERSION`.
Every request is counted by verb and resource (GET /debug/requests) so the benchmark can say
what the operator asked for.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import yaml
from aiohttp import web

from ladder_testing.apiserver.registry import ResourceDef
from ladder_testing.apiserver.selectors import SelectorError, parse_field_selector, parse_label_selector
from ladder_testing.apiserver.store import ApiError, Store

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}


def _json(data, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json"
    )


def _error(err: ApiError) -> web.Response:
    return _json(err.status(), err.code)


class ApiServer:
    def __init__(self, store: Store | None = None, watch_poll_s: float = 30.0):
        self.store = store or Store()
        self.counts: Counter = Counter()
        self.agent_counts: Counter = Counter()  # (client, verb, resource): who asked for what
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self._watch_tasks: set[asyncio.Task] = set()
        self.bookmark_s = watch_poll_s
        # (plural, name) -> message: writes of these objects are answered 422 (POST /debug/reject),
        # as a real server's validation or an admission webhook would.
        self.rejections: dict[tuple[str, str], str] = {}

    # --- discovery -------------------------------------------------------------------------

    def _resource_list(self, group: str, version: str) -> dict:
        resources = []
        for rdef in self.store.resources.values():
            if rdef.group != group or version not in rdef.versions:
                continue
            resources.append(
                {
                    "name": rdef.plural,
                    "singularName": rdef.singular,
                    "namespaced": rdef.namespaced,
                    "kind": rdef.kind,
                    "verbs": list(rdef.verbs),
                    "shortNames": rdef.short_names,
                    "categories": rdef.categories,
                }
            )
            if rdef.status:
                resources.append(
                    {
                        "name": f"{rdef.plural}/status",
                        "singularName": "",
                        "namespaced": rdef.namespaced,
                        "kind": rdef.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        if not resources:
            raise ApiError(404, "NotFound", f"no resources in {group}/{version}")
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _groups(self) -> dict:
        groups: dict[str, list[str]] = {}
        for rdef in self.store.resources.values():
            if rdef.group:
                vs = groups.setdefault(rdef.group, [])
                for v in rdef.versions:
                    if v not in vs:
                        vs.append(v)
        out = []
        for g, vs in sorted(groups.items()):
            preferred = vs[-1]
            out.append(
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in reversed(vs)],
                    "preferredVersion": {"groupVersion": f"{g}/{preferred}", "version": preferred},
                }
            )
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}

    # --- routing ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except ApiError as err:
            return _error(err)
        except SelectorError as err:
            return _error(ApiError(400, "BadRequest", str(err)))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if parts[:1] == ["debug"]:
            return await self._debug(request, parts[1:])
        if parts == ["version"]:
            return _json(
                {"major": "1", "minor": "31", "gitVersion": "v1.31.0-ladder-local", "platform": "linux/amd64"}
            )
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok")
        if parts == ["api"]:
            return _json(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
                    ],
                }
            )
        if parts == ["apis"]:
            return _json(self._groups())
        if parts[:1] == ["api"] and len(parts) == 2:
            return _json(self._resource_list("", parts[1]))
        if parts[:1] == ["apis"] and len(parts) == 2:
            for g in self._groups()["groups"]:
                if g["name"] == parts[1]:
                    return _json({"kind": "APIGroup", "apiVersion": "v1", **g})
            raise ApiError(404, "NotFound", f"group {parts[1]} not found")
        if parts[:1] == ["apis"] and len(parts) == 3:
            return _json(self._resource_list(parts[1], parts[2]))
        if parts[:1] == ["api"]:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"]:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", f"the server could not find {request.path}")
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "NotFound", f"the server could not find {request.path}")
        plural, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), (rest[2] if len(rest) > 2 else "")
        rdef = self.store.find(group, version, plural)
        if sub and (sub != "status" or not rdef.status):
            raise ApiError(404, "NotFound", f"{plural} has no subresource {sub!r}")
        verb = self._verb(method, name, request)
        resource_name = f"{plural}/{sub}" if sub else plural
        self.counts[(verb, resource_name)] += 1
        agent = request.headers.get("User-Agent", "").split("/")[0] or "unknown"
        self.agent_counts[(agent, verb, resource_name)] += 1
        q = request.query
        if name is None:
            if verb == "watch":
                return await self._watch(request, rdef, namespace)
            if verb == "list":
                self._check_list_version(q.get("resourceVersion"), q.get("resourceVersionMatch"))
                items, rv = self.store.list(
                    rdef,
                    namespace,
                    parse_label_selector(q.get("labelSelector")),
                    parse_field_selector(q.get("fieldSelector")),
                )
                return _json(self._list_body(rdef, version, items, rv, q))
            if verb == "create":
                body = await self._body(request)
                meta = (body.get("metadata") if isinstance(body, dict) else None) or {}
                self._admit(rdef, plural, meta.get("name") if isinstance(meta, dict) else None)
                obj = self.store.create(rdef, namespace, body, field_manager=q.get("fieldManager"))
                return _json(self._out(obj, rdef, version), 201)
            if verb == "deletecollection":
                items, _ = self.store.list(
                    rdef,
                    namespace,
                    parse_label_selector(q.get("labelSelector")),
                    parse_field_selector(q.get("fieldSelector")),
                )
                for obj in list(items):
                    self.store.delete(rdef, namespace, obj["metadata"]["name"])
                return _json(self._list_body(rdef, version, items, str(self.store.rv), {}))
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")
        if verb == "get":
            return _json(self._out(self.store.get(rdef, namespace, name), rdef, version))
        if verb in ("update", "patch") and not sub:
            self._admit(rdef, plural, name)
        if verb == "update":
            body = await self._body(request)
            obj = self.store.replace(rdef, namespace, name, body, sub, field_manager=q.get("fieldManager"))
            return _json(self._out(obj, rdef, version))
        if verb == "patch":
            ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
            ptype = PATCH_TYPES.get(ctype)
            if ptype is None:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format "
                    f"- accepted media types include: {', '.join(PATCH_TYPES)}",
                )
            body = await self._body(request, yaml_ok=(ptype == "apply"))
            existed = (namespace or "" if rdef.namespaced else "", name) in self.store.objects[rdef.key]
            obj = self.store.patch(
                rdef,
                namespace,
                name,
                ptype,
                body,
                sub,
                field_manager=q.get("fieldManager"),
                force=q.get("force", "").lower() == "true",
            )
            return _json(self._out(obj, rdef, version), 200 if existed or ptype != "apply" else 201)
        if verb == "delete":
            body = await self._body(request, optional=True) or {}
            if q.get("propagationPolicy"):
                body["propagationPolicy"] = q["propagationPolicy"]
            obj = self.store.delete(rdef, namespace, name, body)
            return _json(self._out(obj, rdef, version))
        raise ApiError(405, "MethodNotAllowed", f"{method} not allowed")

    def _check_list_version(self, since: str | None, match: str | None) -> None:
        """Lists are served from the current state: any version not newer than it is fine
        (NotOlderThan, the default); Exact works only for the current version, else 410 as for a
        compacted one; a version from the future is 504, as a real API server answers."""
        if since in (None, "", "0"):
            return
        try:
            wanted = int(since)
        except ValueError as err:
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {since!r}") from err
        if wanted > self.store.rv:
            raise ApiError(504, "Timeout", f"Too large resource version: {wanted}, current: {self.store.rv}")
        if match == "Exact" and wanted != self.store.rv:
            raise ApiError(
                410, "Expired", f"resourceVersion {wanted} is not the current one; list without it"
            )

    @staticmethod
    def _verb(method: str, name: str | None, request: web.Request) -> str:
        if method == "GET":
            if name is None:
                return "watch" if request.query.get("watch", "").lower() in ("1", "true") else "list"
            return "get"
        return {
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }.get(method, method.lower())

    async def _body(self, request: web.Request, yaml_ok: bool = False, optional: bool = False):
        raw = await request.read()
        if not raw:
            if optional:
                return None
            raise ApiError(400, "BadRequest", "the request has no body")
        try:
            return json.loads(raw)
        except ValueError:
            if yaml_ok:
                try:
                    return yaml.safe_load(raw)
                except yaml.YAMLError as err:
                    raise ApiError(400, "BadRequest", f"invalid YAML: {err}") from err
            raise ApiError(400, "BadRequest", "the body is not valid JSON") from None

    def _out(self, obj: dict, rdef: ResourceDef, version: str) -> dict:
        out = self.store.render(obj)
        if out.get("apiVersion") != rdef.api_version(version):
            out = {**out, "apiVersion": rdef.api_version(version)}
        return out

    def _list_body(self, rdef: ResourceDef, version: str, items: list[dict], rv: str, q) -> dict:
        limit = int(q.get("limit") or 0) if q else 0
        start = int(q.get("continue") or 0) if q else 0
        chunk = items[start : start + limit] if limit else items[start:]
        more = bool(limit) and start + limit < len(items)
        return {
            "kind": rdef.list_kind,
            "apiVersion": rdef.api_version(version),
            "metadata": {"resourceVersion": rv, **({"continue": str(start + limit)} if more else {})},
            "items": [self._out(o, rdef, version) for o in chunk],
        }

    async def _watch(
        self, request: web.Request, rdef: ResourceDef, namespace: str | None
    ) -> web.StreamResponse:
        q = request.query
        initial = q.get("sendInitialEvents", "").lower() == "true"
        try:
            watcher, backlog = self.store.watch(
                rdef,
                namespace,
                parse_label_selector(q.get("labelSelector")),
                parse_field_selector(q.get("fieldSelector")),
                q.get("resourceVersion"),
                initial,
            )
        except ApiError as err:
            if err.code != 410:
                raise
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            await resp.write(json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n")
            await resp.write_eof()
            return resp
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        )
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        bookmarks = q.get("allowWatchBookmarks", "").lower() == "true"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        try:
            await resp.prepare(request)
            if backlog:
                await resp.write(b"".join(backlog))
            while True:
                wait = self.bookmark_s
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        break
                try:
                    ev = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        break
                    if bookmarks:
                        await resp.write(
                            json.dumps(
                                {
                                    "type": "BOOKMARK",
                                    "object": {
                                        "kind": rdef.kind,
                                        "apiVersion": rdef.api_version(),
                                        "metadata": {"resourceVersion": str(self.store.rv)},
                                    },
                                }
                            ).encode()
                            + b"\n"
                        )
                    continue
                if ev is None:  # the server is shutting down
                    break
                lines = [ev.line]
                while not watcher.queue.empty():
                    nxt = watcher.queue.get_nowait()
                    if nxt is None:
                        break
                    lines.append(nxt.line)
                await resp.write(b"".join(lines))
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.watchers.discard(watcher)
        return resp

    def _admit(self, rdef: ResourceDef, plural: str, name: str | None) -> None:
        message = self.rejections.get((plural, name or ""))
        if message is not None:
            group = f".{rdef.group}" if rdef.group else ""
            raise ApiError(422, "Invalid", f'{rdef.kind}{group} "{name}" is invalid: {message}')

    def close_watches(self) -> None:
        for w in list(self.store.watchers):
            w.queue.put_nowait(None)

    async def _debug(self, request: web.Request, parts: list[str]) -> web.Response:
        if parts == ["requests"]:
            if request.method == "DELETE":
                self.counts.clear()
                self.agent_counts.clear()
            return _json(
                [
                    {"client": a, "verb": v, "resource": r, "count": c}
                    for (a, v, r), c in sorted(self.agent_counts.items())
                ]
            )
        if parts == ["compact"] and request.method == "POST":
            self.store.compact()
            return _json({"compactedResourceVersion": str(self.store.compacted_rv)})
        if parts == ["reject"]:
            if request.method == "DELETE":
                self.rejections.clear()
            else:
                body = await self._body(request)
                self.rejections[(body["resource"], body["name"])] = body["message"]
            return _json({"rejections": len(self.rejections)})
        if parts == ["watchers"]:
            return _json({"watchers": len(self.store.watchers)})
        raise ApiError(404, "NotFound", "unknown debug endpoint")
