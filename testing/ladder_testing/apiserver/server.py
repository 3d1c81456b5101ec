"""HTTP front of the local API server: Kubernetes REST paths, discovery, watch streams.

Paths are parsed by hand (one catch-all route) because the API's URL grammar is small but
positional: `/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]` and the same under `/apis/GROUP/VERSION`.
Every request is counted by verb and resource (GET /debug/requests) so the benchmark can say
what the operator asked for.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter, deque

import yaml
from aiohttp import web

from ladder_testing.apiserver import protobuf_bodies, tables
from ladder_testing.apiserver.admission import FIELD_VALIDATION, WriteOptions
from ladder_testing.apiserver.errors import ApiError
from ladder_testing.apiserver.openapi import OpenApi
from ladder_testing.apiserver.registry import ResourceDef
from ladder_testing.apiserver.selectors import SelectorError, parse_field_selector, parse_label_selector
from ladder_testing.apiserver.store import Store, selectable

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+json": "apply",
}
MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's --max-resource-write-bytes default
# Asked for as ...spec.v2@v1.0+protobuf; answered with the "@" spelled "." (kube-openapi does: "@" is
# not valid in a Content-Type, Go clients refuse it).
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-ladder-local",
    "platform": "linux/amd64",
}


def _json(data, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    rsp = web.Response(
        body=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json"
    )
    for w in warnings or []:
        rsp.headers.add("Warning", "299 - " + json.dumps(w))
    return rsp


def _error(err: ApiError) -> web.Response:
    return _json(err.status(), err.code)


def _go_json_error(raw: bytes, err: ValueError) -> str:
    """A JSON syntax error worded like Go's decoder (what a real server quotes back)."""
    pos = getattr(err, "pos", None)
    if isinstance(err, _NonFiniteError):
        return f"invalid character '{err.token[0]}' looking for beginning of value"
    if pos is not None and pos < len(raw):
        return f"invalid character {chr(raw[pos])!r} looking for beginning of value"
    return "unexpected end of JSON input"


class _NonFiniteError(ValueError):
    """NaN, Infinity or a number too large for a float64: not JSON, refused with 400."""

    def __init__(self, token: str):
        super().__init__(token)
        self.token = token


def _reject_constant(token: str):
    raise _NonFiniteError(token)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFiniteError(text)
    return value


def parse_json(raw: bytes):
    return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)


def _check_finite(value, path: str = "") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ApiError(400, "BadRequest", f"{path or 'the body'}: {value} is not a valid JSON number")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{path}[{i}]")


class ApiServer:
    def __init__(self, store: Store | None = None, watch_poll_s: float = 30.0):
        self.store = store or Store()
        self.counts: Counter = Counter()
        self.agent_counts: Counter = Counter()  # (client, verb, resource): who asked for what
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self._watch_tasks: set[asyncio.Task] = set()
        self.bookmark_s = watch_poll_s
        self.openapi = OpenApi()
        self.errors: deque[dict] = deque(maxlen=1000)  # refused writes, newest last
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

    async def _openapi(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        self.openapi.refresh(self.store.epoch, list(self.store.resources.values()))
        if parts == ["v2"]:
            if "protobuf" in request.headers.get("Accept", ""):
                return web.Response(body=self.openapi.v2("protobuf"), content_type=OPENAPI_V2_PROTOBUF)
            return web.Response(body=self.openapi.v2("json"), content_type="application/json")
        if parts == ["v3"]:
            return _json(self.openapi.discovery())
        found = self.openapi.v3("/".join(parts[1:])) if parts[:1] == ["v3"] else None
        if found is None:
            raise ApiError(404, "NotFound", f"the server could not find {request.path}")
        body, digest = found
        wanted = request.query.get("hash")
        if wanted and wanted != digest:
            # A stale hash (a CRD changed): redirect to the current document, as kube-apiserver does.
            raise web.HTTPMovedPermanently(f"{request.path}?hash={digest}")
        rsp = web.Response(body=body, content_type="application/json")
        rsp.headers["Etag"] = f'"{digest}"'
        if wanted:
            rsp.headers["Cache-Control"] = "public, immutable"
        return rsp

    # --- routing ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except SelectorError as err:
            return self._refused(request, ApiError(400, "BadRequest", str(err)))
        except ApiError as err:
            return self._refused(request, err)

    def _refused(self, request: web.Request, err: ApiError) -> web.Response:
        """Answer an error, remembering refused writes (GET /debug/errors): a client that gets a
        4xx it swallows (a best-effort Event, a retried status write) shows up there."""
        if request.method != "GET" and err.code not in (404, 409):
            agent = request.headers.get("User-Agent", "").split("/")[0] or "unknown"
            self.errors.append(
                {
                    "client": agent,
                    "verb": request.method,
                    "path": request.path,
                    "code": err.code,
                    "message": err.message,
                }
            )
        return _error(err)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["debug"]:
            return await self._debug(request, parts[1:])
        if parts[:1] == ["openapi"]:
            return await self._openapi(request, parts[1:])
        if parts == ["version"]:
            return _json(SERVER_VERSION)
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
        return await self._resource(request, parts)

    async def _resource(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
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
        verb = self._verb(request.method, name, request)
        resource_name = f"{plural}/{sub}" if sub else plural
        self.counts[(verb, resource_name)] += 1
        agent = request.headers.get("User-Agent", "").split("/")[0] or "unknown"
        self.agent_counts[(agent, verb, resource_name)] += 1
        if name is None:
            return await self._collection(request, verb, rdef, version, namespace)
        return await self._object(request, verb, rdef, version, namespace, name, sub)

    async def _collection(
        self, request: web.Request, verb: str, rdef: ResourceDef, version: str, namespace: str | None
    ) -> web.StreamResponse:
        q = request.query
        if verb == "watch":
            return await self._watch(request, rdef, version, namespace)
        if verb == "list":
            self._check_list_version(q.get("resourceVersion"), q.get("resourceVersionMatch"))
            items, rv = self.store.list(rdef, namespace, *self._selectors(rdef, q))
            body = self._list_body(rdef, version, items, rv, q)
            if tables.wants_table(request.headers.get("Accept", "")):
                return self._table(request, rdef, version, body["items"], body["metadata"])
            return _json(body)
        if verb == "create":
            opts = self._write_options(q)
            body = self._check_api_version(await self._body(request), rdef, version)
            meta = (body.get("metadata") if isinstance(body, dict) else None) or {}
            self._admit(rdef, meta.get("name") if isinstance(meta, dict) else None)
            obj = self.store.create(rdef, namespace, body, field_manager=self._manager(request), opts=opts)
            return _json(self._out(obj, rdef, version), 201, opts.warnings)
        if verb == "deletecollection":
            opts = self._write_options(q)
            body = await self._delete_options(request, opts)
            items, _ = self.store.list(rdef, namespace, *self._selectors(rdef, q))
            for obj in list(items):
                where = namespace or obj["metadata"].get("namespace")
                self.store.delete(rdef, where, obj["metadata"]["name"], body, opts=opts)
            return _json(self._list_body(rdef, version, items, str(self.store.rv), {}))
        raise ApiError(405, "MethodNotAllowed", f"{request.method} is not allowed on a collection")

    async def _object(
        self,
        request: web.Request,
        verb: str,
        rdef: ResourceDef,
        version: str,
        namespace: str | None,
        name: str,
        sub: str,
    ) -> web.StreamResponse:
        q = request.query
        if verb == "get":
            obj = self._out(self.store.get(rdef, namespace, name), rdef, version)
            if tables.wants_table(request.headers.get("Accept", "")):
                return self._table(
                    request,
                    rdef,
                    version,
                    [obj],
                    {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                )
            return _json(obj)
        opts = self._write_options(q)
        if verb in ("update", "patch") and not sub:
            self._admit(rdef, name)
        if verb == "update":
            body = self._check_api_version(await self._body(request), rdef, version)
            obj = self.store.replace(
                rdef, namespace, name, body, sub, field_manager=self._manager(request), opts=opts
            )
            return _json(self._out(obj, rdef, version), 200, opts.warnings)
        if verb == "patch":
            return await self._patch(request, rdef, version, namespace, name, sub, opts)
        if verb == "delete":
            body = await self._delete_options(request, opts)
            obj = self.store.delete(rdef, namespace, name, body, opts=opts)
            return _json(self._out(obj, rdef, version))
        raise ApiError(405, "MethodNotAllowed", f"{request.method} not allowed")

    async def _patch(
        self,
        request: web.Request,
        rdef: ResourceDef,
        version: str,
        namespace: str | None,
        name: str,
        sub: str,
        opts: WriteOptions,
    ) -> web.Response:
        q = request.query
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        ptype = PATCH_TYPES.get(ctype)
        if ptype is None or (ptype == "strategic" and rdef.crd):
            accepted = [t for t, p in PATCH_TYPES.items() if not (p == "strategic" and rdef.crd)]
            accepted = [t for t in accepted if t != "application/apply-patch+json"]
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(accepted)}",
            )
        body = await self._body(request, yaml_ok=(ptype == "apply"))
        if ptype == "apply":
            body = self._check_api_version(body, rdef, version)
        existed = (namespace or "" if rdef.namespaced else "", name) in self.store.objects[rdef.key]
        obj = self.store.patch(
            rdef,
            namespace,
            name,
            ptype,
            body,
            sub,
            field_manager=q.get("fieldManager") if ptype == "apply" else self._manager(request),
            force=q.get("force", "").lower() == "true",
            opts=opts,
        )
        code = 200 if existed or ptype != "apply" else 201
        return _json(self._out(obj, rdef, version), code, opts.warnings)

    async def _delete_options(self, request: web.Request, opts: WriteOptions) -> dict:
        """A delete's DeleteOptions: from its body (where kubectl puts `dryRun`, `preconditions`,
        `propagationPolicy`) and its query."""
        body = await self._body(request, optional=True) or {}
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "DeleteOptions must be a JSON object")
        if request.query.get("propagationPolicy"):
            body["propagationPolicy"] = request.query["propagationPolicy"]
        dry_run = body.get("dryRun") or []
        if any(d != "All" for d in dry_run):
            raise ApiError(
                400,
                "BadRequest",
                f'dryRun: Unsupported value: {json.dumps(dry_run)}: supported values: "All"',
            )
        opts.dry_run = opts.dry_run or bool(dry_run)
        return body

    @staticmethod
    def _manager(request: web.Request) -> str:
        """The field manager of a create, update or (non-apply) patch: `fieldManager`, else the
        client's User-Agent up to its first '/', as kube-apiserver derives it."""
        return (
            request.query.get("fieldManager")
            or request.headers.get("User-Agent", "").split("/")[0]
            or "unknown"
        )

    @staticmethod
    def _write_options(q) -> WriteOptions:
        dry_run = q.getall("dryRun", [])
        if any(d != "All" for d in dry_run):
            raise ApiError(
                400,
                "BadRequest",
                f'dryRun: Unsupported value: {json.dumps(dry_run)}: supported values: "All"',
            )
        validation = q.get("fieldValidation") or "Warn"
        if validation not in FIELD_VALIDATION:
            raise ApiError(
                400,
                "BadRequest",
                f"fieldValidation: Unsupported value: {json.dumps(validation)}: supported values: "
                + ", ".join(json.dumps(v) for v in FIELD_VALIDATION),
            )
        return WriteOptions(dry_run=bool(dry_run), field_validation=validation)

    @staticmethod
    def _selectors(rdef: ResourceDef, q) -> tuple:
        return (
            parse_label_selector(q.get("labelSelector")),
            parse_field_selector(q.get("fieldSelector"), selectable(rdef)),
        )

    @staticmethod
    def _check_api_version(body, rdef: ResourceDef, version: str):
        if (
            isinstance(body, dict)
            and body.get("apiVersion")
            and body["apiVersion"] != rdef.api_version(version)
        ):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({body['apiVersion']}) does not match the expected API "
                f"version ({rdef.api_version(version)})",
            )
        return body

    def _table(self, request: web.Request, rdef: ResourceDef, version: str, objs: list[dict], meta: dict):
        q = request.query
        try:
            table = tables.to_table(
                rdef, version, objs, meta, q.get("includeObject", ""), q.get("noHeaders") == "true"
            )
        except ValueError as err:
            raise ApiError(400, "BadRequest", str(err)) from err
        return _json(table)

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
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raw = b"x" * (MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(
                413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY_BYTES}"
            )
        if not raw:
            if optional:
                return None
            raise ApiError(400, "BadRequest", "the request has no body")
        if raw.startswith(protobuf_bodies.MAGIC) or "protobuf" in request.headers.get("Content-Type", ""):
            try:
                return protobuf_bodies.decode(raw)
            except (protobuf_bodies.ProtobufError, KeyError, UnicodeDecodeError) as err:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"{err}: the local API server reads protobuf bodies of "
                    f"{', '.join(protobuf_bodies.KINDS)} only; send JSON (kubectl create -f / apply -f)",
                ) from None
        try:
            return parse_json(raw)
        except RecursionError:
            raise ApiError(400, "BadRequest", "json: exceeded max depth") from None
        except ValueError as err:
            if not yaml_ok or isinstance(err, _NonFiniteError):
                raise ApiError(
                    400,
                    "BadRequest",
                    f"couldn't get version/kind; json parse error: {_go_json_error(raw, err)}",
                ) from None
        try:
            body = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (yaml.YAMLError, RecursionError) as err:
            raise ApiError(400, "BadRequest", f"error converting YAML to JSON: {err}") from err
        _check_finite(body)
        return body

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
        self, request: web.Request, rdef: ResourceDef, version: str, namespace: str | None
    ) -> web.StreamResponse:
        q = request.query
        initial = q.get("sendInitialEvents", "").lower() == "true"
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        try:
            watcher, backlog = self.store.watch(
                rdef,
                namespace,
                *self._selectors(rdef, q),
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
                await resp.write(b"".join(self._table_lines(rdef, version, backlog) if as_table else backlog))
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
                await resp.write(b"".join(self._table_lines(rdef, version, lines) if as_table else lines))
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.watchers.discard(watcher)
        return resp

    @staticmethod
    def _table_lines(rdef: ResourceDef, version: str, lines: list[bytes]) -> list[bytes]:
        """Watch events for a client that asked for Tables (`kubectl get -w`): each object becomes
        a one-row Table; bookmarks and errors pass as they are."""
        out = []
        for line in lines:
            ev = json.loads(line)
            obj = ev.get("object") or {}
            if ev.get("type") in ("ADDED", "MODIFIED", "DELETED") and obj.get("kind") == rdef.kind:
                meta = {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion", "")}
                ev["object"] = tables.to_table(rdef, version, [obj], meta)
            out.append(json.dumps(ev, separators=(",", ":")).encode() + b"\n")
        return out

    def _admit(self, rdef: ResourceDef, name: str | None) -> None:
        message = self.rejections.get((rdef.plural, name or ""))
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
        if parts == ["errors"]:
            if request.method == "DELETE":
                self.errors.clear()
            return _json(list(self.errors))
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
