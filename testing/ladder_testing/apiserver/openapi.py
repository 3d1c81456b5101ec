"""The OpenAPI documents kubectl reads: `/openapi/v2` (one Swagger 2.0 document) and
`/openapi/v3` (a discovery map of per-group-version OpenAPI 3.0 documents, each at a URL with its
content hash, as kube-apiserver serves them).

What kubectl needs from them: the schema of every kind, found by `x-kubernetes-group-version-kind`
(`kubectl explain`, client-side strategic merge keys), and each kind's PATCH operation with its
query parameters (`kubectl apply/create/edit` look for `fieldValidation` there and, when found,
leave validation to the server, which then rejects unknown fields with `fieldValidation=Strict`).

Built-in kinds use Kubernetes v1.32's own definitions (builtin_schemas); custom resources use their
CRD's `openAPIV3Schema`, with `metadata` pointing at ObjectMeta, as the apiextensions server
publishes them.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from ladder_testing.apiserver import builtin_schemas
from ladder_testing.apiserver.registry import ResourceDef

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
TITLE, VERSION = "Kubernetes", f"v{builtin_schemas.K8S_VERSION}"
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
STRATEGIC = "application/strategic-merge-patch+json"
QUERY = {
    "dryRun": (
        "string",
        "When present, indicates that modifications should not be persisted. Valid value: All",
    ),
    "fieldManager": (
        "string",
        "fieldManager is a name associated with the actor or entity making these changes.",
    ),
    "fieldValidation": (
        "string",
        "fieldValidation instructs the server on how to handle objects in the request containing unknown or "
        "duplicate fields. Valid values are: Ignore, Warn (the default), Strict.",
    ),
    "force": ("boolean", 'Force is going to "force" Apply requests. It must be unset for non-apply patches.'),
    "labelSelector": ("string", "A selector to restrict the list of returned objects by their labels."),
    "fieldSelector": ("string", "A selector to restrict the list of returned objects by their fields."),
    "limit": ("integer", "limit is a maximum number of responses to return for a list call."),
    "continue": ("string", "The continue option should be set when retrieving more results from the server."),
    "resourceVersion": (
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    "watch": ("boolean", "Watch for changes to the described resources."),
}
METADATA_DESCRIPTION = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def ref(name: str, flavor: str) -> str:
    return f"#/definitions/{name}" if flavor == "v2" else f"#/components/schemas/{name}"


# --- schema conversion --------------------------------------------------------------------------


def from_builtin(node: Any, flavor: str, top: bool = False) -> Any:
    """kubernetes-validate's JSON Schema back into the API server's OpenAPI spelling."""
    if isinstance(node, list):
        return [from_builtin(n, flavor) for n in node]
    if not isinstance(node, dict):
        return node
    alternatives = [a.get("type") for a in node.get("oneOf") or [] if isinstance(a, dict)]
    if alternatives:
        kinds = {t[0] if isinstance(t, list) else t for t in alternatives}
        out = {"type": "string"}
        if "integer" in kinds:
            out["format"] = "int-or-string"
        return out
    out: dict = {}
    for k, v in node.items():
        if k == "$ref":
            out[k] = ref(v.rsplit("/", 1)[-1], flavor)
        elif k == "type":
            types = [t for t in (v if isinstance(v, list) else [v]) if t != "null"]
            if types:
                out[k] = types[0]
        elif k == "additionalProperties" and v is False:
            continue
        elif k == "properties":
            out[k] = {p: _property(s, flavor, p) for p, s in v.items()}
        elif k in ("items", "additionalProperties"):
            out[k] = from_builtin(v, flavor)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _property(node: dict, flavor: str, name: str) -> dict:
    node = dict(node)
    if name in ("apiVersion", "kind"):
        node.pop("enum", None)  # added by kubernetes-validate, not part of the API's schema
    out = from_builtin(node, flavor)
    if flavor == "v3" and "$ref" in out and len(out) > 1:
        # kube-openapi's v3: a described reference is an allOf of one ref.
        target = out.pop("$ref")
        out = {"allOf": [{"$ref": target}], **out}
    return out


def _builtin_closure(names: list[str]) -> dict[str, dict]:
    """The named definitions and every definition they reference."""
    defs = builtin_schemas.definitions()
    out: dict[str, dict] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in out or name not in defs:
            continue
        out[name] = defs[name]
        todo += _refs(defs[name])
    return out


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"].rsplit("/", 1)[-1]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _crd_v2(node: Any) -> Any:
    """What the apiextensions server drops publishing a structural schema as Swagger 2.0."""
    if isinstance(node, list):
        return [_crd_v2(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k in ("nullable", "anyOf", "oneOf", "allOf", "not", "x-kubernetes-validations", "default"):
            continue
        if k == "properties":
            out[k] = {p: _crd_v2(s) for p, s in v.items()}
        else:
            out[k] = _crd_v2(v)
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    return out


def crd_component(rdef: ResourceDef, version: str, flavor: str) -> dict:
    schema = copy.deepcopy(rdef.schemas.get(version) or {"type": "object"})
    if flavor == "v2":
        schema = _crd_v2(schema)
    props = schema.setdefault("properties", {})
    meta_ref = ref(META + "ObjectMeta", flavor)
    props["metadata"] = (
        {"$ref": meta_ref, "description": METADATA_DESCRIPTION}
        if flavor == "v2"
        else {"allOf": [{"$ref": meta_ref}], "description": METADATA_DESCRIPTION}
    )
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [{"group": rdef.group, "kind": rdef.kind, "version": version}]
    return schema


def crd_list_component(rdef: ResourceDef, version: str, flavor: str) -> dict:
    return {
        "type": "object",
        "required": ["items"],
        "description": f"{rdef.kind}List is a list of {rdef.kind}",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": ref(component_name(rdef, version), flavor)}},
            "metadata": {"$ref": ref(META + "ListMeta", flavor)},
        },
        "x-kubernetes-group-version-kind": [
            {"group": rdef.group, "kind": rdef.list_kind, "version": version}
        ],
    }


def component_name(rdef: ResourceDef, version: str, kind: str | None = None) -> str:
    kind = kind or rdef.kind
    if not rdef.crd:
        name = builtin_schemas.definition_name(rdef.group, version, kind)
        if name:
            return name
    reversed_group = ".".join(reversed(rdef.group.split(".")))
    return f"{reversed_group}.{version}.{kind}"


def components(resources: list[tuple[ResourceDef, str]], flavor: str) -> dict[str, dict]:
    builtin = [component_name(r, v) for r, v in resources if not r.crd]
    builtin += [component_name(r, v, r.list_kind) for r, v in resources if not r.crd]
    builtin += [META + n for n in ("ObjectMeta", "ListMeta", "Status", "DeleteOptions", "Patch")]
    out = {name: from_builtin(d, flavor) for name, d in _builtin_closure(builtin).items()}
    for r, v in resources:
        if r.crd:
            out[component_name(r, v)] = crd_component(r, v, flavor)
            out[component_name(r, v, r.list_kind)] = crd_list_component(r, v, flavor)
    return dict(sorted(out.items()))


# --- paths --------------------------------------------------------------------------------------


def _prefix(rdef: ResourceDef, version: str) -> str:
    return f"/apis/{rdef.group}/{version}" if rdef.group else f"/{'api'}/{version}"


def _op_id(verb: str, rdef: ResourceDef, version: str, scope: str) -> str:
    group = "".join(p.capitalize() for p in (rdef.group or "core").replace("-", ".").split(".")[:2])
    return f"{verb}{group}{version.capitalize()}{scope}{rdef.kind}"


def _param(name: str, flavor: str, where: str = "query", required: bool = False) -> dict:
    ptype, text = QUERY.get(name, ("string", f"name of the {name}"))
    p = {"name": name, "in": where, "description": text, "uniqueItems": True}
    if required:
        p["required"] = True
    if flavor == "v2":
        p["type"] = ptype
    else:
        p["schema"] = {"type": ptype, "uniqueItems": True}
    return p


def _operation(verb, action, rdef, version, scope, flavor, kind, params=(), body=None, consumes=None,
               subresource="") -> dict:
    op = {
        "operationId": _op_id(verb, rdef, version, scope) + subresource,
        "tags": [f"{rdef.group or 'core'}_{version}"],
        "description": f"{verb} {rdef.kind}",
        "parameters": [_param(p, flavor) for p in params],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rdef.group, "kind": rdef.kind, "version": version},
    }
    target = ref(component_name(rdef, version, kind), flavor)
    if flavor == "v2":
        op["responses"] = {"200": {"description": "OK", "schema": {"$ref": target}}}
        op["produces"] = ["application/json", "application/yaml"]
        op["consumes"] = consumes or ["*/*"]
        if body:
            op["parameters"].append(
                {"name": "body", "in": "body", "required": True, "schema": {"$ref": ref(body, flavor)}}
            )
    else:
        op["responses"] = {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": target}}}}
        }
        if body:
            op["requestBody"] = {
                "content": {ct: {"schema": {"$ref": ref(body, flavor)}} for ct in consumes or ["*/*"]},
                "required": True,
            }
    return op


def paths(rdef: ResourceDef, version: str, flavor: str) -> dict[str, dict]:
    base = _prefix(rdef, version)
    scoped = f"{base}/namespaces/{{namespace}}/{rdef.plural}" if rdef.namespaced else f"{base}/{rdef.plural}"
    scope = "Namespaced" if rdef.namespaced else ""
    kind_name = component_name(rdef, version)
    patch_types = PATCH_TYPES + ([] if rdef.crd else [STRATEGIC])
    write = ("dryRun", "fieldManager", "fieldValidation")

    def op(*args, **kw):
        return _operation(*args, rdef=rdef, version=version, scope=scope, flavor=flavor, **kw)

    ns = [_param("namespace", flavor, "path", True)] if rdef.namespaced else []
    name = [_param("name", flavor, "path", True)]
    listing = ("labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch")

    def one_object(subresource: str = "") -> dict:
        """Read, replace and patch of one object or of its subresource (ids as kube-apiserver's:
        readNamespacedPod, readNamespacedPodStatus)."""
        def one(verb, action, **kw):
            return op(verb, action, kind=rdef.kind, subresource=subresource, **kw)

        return {
            "parameters": ns + name,
            "get": one("read", "get"),
            "put": one("replace", "put", params=write, body=kind_name),
            "patch": one("patch", "patch", params=(*write, "force"), body=META + "Patch",
                         consumes=patch_types),
        }

    out = {
        scoped: {
            "parameters": ns,
            "get": op("list", "list", kind=rdef.list_kind, params=listing),
            "post": op("create", "post", kind=rdef.kind, params=write, body=kind_name),
            "delete": op("deletecollection", "deletecollection", kind=rdef.list_kind),
        },
        f"{scoped}/{{name}}": {
            **one_object(),
            "delete": op("delete", "delete", kind=rdef.kind, params=("dryRun",)),
        },
    }
    if rdef.status:
        out[f"{scoped}/{{name}}/status"] = one_object("Status")
    if rdef.namespaced:  # listCoreV1PodForAllNamespaces
        every = _operation("list", "list", rdef=rdef, version=version, scope="", flavor=flavor,
                           kind=rdef.list_kind, params=listing, subresource="ForAllNamespaces")
        out[f"{base}/{rdef.plural}"] = {"get": every}
    return out


# --- documents ----------------------------------------------------------------------------------


def _served(resources: list[ResourceDef]) -> list[tuple[ResourceDef, str]]:
    return [(r, v) for r in resources for v in r.versions]


def group_version_key(rdef: ResourceDef, version: str) -> str:
    return f"apis/{rdef.group}/{version}" if rdef.group else f"api/{version}"


def v3_documents(resources: list[ResourceDef]) -> dict[str, dict]:
    """`api/v1`, `apis/GROUP/VERSION` -> OpenAPI 3.0 document of that group-version."""
    by_gv: dict[str, list[tuple[ResourceDef, str]]] = {}
    for r, v in _served(resources):
        by_gv.setdefault(group_version_key(r, v), []).append((r, v))
    docs = {}
    for key, members in sorted(by_gv.items()):
        all_paths: dict = {}
        for r, v in members:
            all_paths.update(paths(r, v, "v3"))
        docs[key] = {
            "openapi": "3.0.0",
            "info": {"title": TITLE, "version": VERSION},
            "paths": dict(sorted(all_paths.items())),
            "components": {"schemas": components(members, "v3")},
        }
    return docs


def v2_document(resources: list[ResourceDef]) -> dict:
    served = _served(resources)
    all_paths: dict = {}
    for r, v in served:
        all_paths.update(paths(r, v, "v2"))
    return {
        "swagger": "2.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": dict(sorted(all_paths.items())),
        "definitions": components(served, "v2"),
    }


class OpenApi:
    """The documents for the resources currently served, rebuilt only when the set changes."""

    def __init__(self):
        self._epoch: object = None
        self._v3: dict[str, bytes] = {}
        self._hashes: dict[str, str] = {}
        self._v2: dict | None = None
        self._v2_bytes: dict[str, bytes] = {}

    def refresh(self, epoch: object, resources: list[ResourceDef]) -> None:
        if epoch == self._epoch:
            return
        docs = v3_documents(resources)
        self._v3 = {k: json.dumps(d, separators=(",", ":")).encode() for k, d in docs.items()}
        self._hashes = {k: hashlib.sha512(b).hexdigest().upper() for k, b in self._v3.items()}
        self._v2 = None
        self._v2_bytes = {}
        self._resources = resources
        self._epoch = epoch

    def discovery(self) -> dict:
        return {
            "paths": {k: {"serverRelativeURL": f"/openapi/v3/{k}?hash={h}"} for k, h in self._hashes.items()}
        }

    def v3(self, key: str) -> tuple[bytes, str] | None:
        return (self._v3[key], self._hashes[key]) if key in self._v3 else None

    def v2(self, encoding: str) -> bytes:
        """The Swagger 2.0 document as JSON or as gnostic protobuf (what kubectl asks for)."""
        if encoding not in self._v2_bytes:
            if self._v2 is None:
                self._v2 = v2_document(self._resources)
            if encoding == "protobuf":
                from ladder_testing.apiserver.openapi_pb import encode_document

                self._v2_bytes[encoding] = encode_document(self._v2)
            else:
                self._v2_bytes[encoding] = json.dumps(self._v2, separators=(",", ":")).encode()
        return self._v2_bytes[encoding]
