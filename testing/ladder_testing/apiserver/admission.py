"""From a request body to an object the server may store, as kube-apiserver decides it.

Two steps, both pure: `decode` (what the request deserializes to: unknown fields pruned and
reported according to `fieldValidation`, built-in kinds type-checked as their Go structs would be,
400 on failure) and `admit` (the object about to be written: defaults applied, custom resources
validated against their structural schema, metadata validated, the etcd size limit; 422 or the
error etcd gives).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ladder_testing.apiserver import builtin_schemas, naming, schema
from ladder_testing.apiserver.errors import ApiError, FieldError, invalid, invalid_error, required
from ladder_testing.apiserver.registry import ResourceDef

ETCD_MAX_REQUEST_BYTES = 1536 * 1024  # etcd's default --max-request-bytes (1.5 MiB)
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")


@dataclass
class WriteOptions:
    """Per-request write options: `dryRun=All`, `fieldValidation`, and the warnings the answer
    carries back (`Warning: 299 - "..."` headers)."""

    dry_run: bool = False
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)


def body_schema(rdef: ResourceDef) -> tuple[dict, dict | None]:
    """(schema, defs) of the kind's body: the CRD's structural schema, or the built-in definition."""
    if rdef.crd:
        return rdef.schema, None
    d = builtin_schemas.definition(rdef.group, rdef.storage_version, rdef.kind)
    return (d or {}), builtin_schemas.definitions()


def decode(rdef: ResourceDef, body: dict, opts: WriteOptions, *, apply: bool = False) -> dict:
    """Prune what the kind does not declare (metadata by ObjectMeta), refuse what does not decode."""
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the body must be a JSON object")
    node, defs = body_schema(rdef)
    dropped: list[str] = []
    out = {}
    for k, v in body.items():
        if k in ("apiVersion", "kind"):
            out[k] = v
        elif k == "metadata":
            meta_defs = builtin_schemas.definitions()
            out[k] = schema.prune(v, builtin_schemas.object_meta(), meta_defs, "metadata", dropped)
            err = schema.decode_error(out[k], builtin_schemas.object_meta(), meta_defs, "metadata")
            if err:
                raise _undecodable(rdef, err)
        else:
            sub = schema.child(schema.resolve(node, defs), k, defs) if node else {}
            if sub is None:
                dropped.append(k)
                continue
            out[k] = schema.prune(v, sub, defs, k, dropped)
    if not rdef.crd and node:
        err = schema.decode_error({k: v for k, v in out.items() if k != "metadata"}, node, defs)
        if err:
            raise _undecodable(rdef, err)
    _report_unknown(rdef, dropped, opts, apply)
    return out


def _undecodable(rdef: ResourceDef, detail: str) -> ApiError:
    return ApiError(
        400,
        "BadRequest",
        f'{rdef.kind} in version "{rdef.storage_version}" cannot be handled as a {rdef.kind}: {detail}',
    )


def _report_unknown(rdef: ResourceDef, dropped: list[str], opts: WriteOptions, apply: bool) -> None:
    if not dropped or opts.field_validation == "Ignore":
        return
    if opts.field_validation == "Strict":
        if apply:
            raise ApiError(
                400,
                "BadRequest",
                f"failed to create typed patch object ({rdef.api_version()}, Kind={rdef.kind}): "
                + "; ".join(f".{p}: field not declared in schema" for p in dropped),
            )
        raise _undecodable(
            rdef, "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in dropped)
        )
    opts.warnings += [f'unknown field "{p}"' for p in dropped]


# The defaults of built-in kinds that clients here can see (their Go defaulting functions).
BUILTIN_DEFAULTS = {
    ("", "secrets"): lambda o: o.setdefault("type", "Opaque"),
    ("", "namespaces"): lambda o: (
        o.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"]),
        o.setdefault("status", {}).setdefault("phase", "Active"),
    ),
}


def admit(rdef: ResourceDef, obj: dict, old: dict | None) -> dict:
    """Default and validate the object about to be stored; raise 422."""
    name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName", "")
    errs: list[FieldError] = naming.validate_metadata(
        obj.get("metadata") or {}, rdef.name_rule, rdef.namespaced
    )
    if rdef.crd:
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        schema.apply_defaults(body, rdef.schema)
        obj.update(body)
        old_body = {k: v for k, v in (old or {}).items() if k not in ("apiVersion", "kind", "metadata")}
        for k, v in body.items():
            sub = (rdef.schema.get("properties") or {}).get(k)
            if sub:
                errs += schema.validate(
                    v, sub, None, k, old_body.get(k, schema.MISSING) if old else schema.MISSING
                )
        errs += [required(k) for k in rdef.schema.get("required") or [] if k not in obj]
    else:
        if rdef.key in BUILTIN_DEFAULTS:
            BUILTIN_DEFAULTS[rdef.key](obj)
        errs += _builtin_required(rdef, obj)
    if rdef.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
        errs += _crd_name(obj)
    if errs:
        raise invalid_error(rdef.kind, rdef.group, name, errs)
    return obj


def check_size(stored: dict) -> None:
    """etcd refuses a value over 1.5 MiB: the object as stored, managedFields included (a dry run
    never reaches etcd, so it is not checked). A real cluster answers a 500 (kubernetes#112152)."""
    if len(json.dumps(stored, separators=(",", ":"))) > ETCD_MAX_REQUEST_BYTES:
        raise ApiError(500, "", "etcdserver: request is too large")


def _builtin_required(rdef: ResourceDef, obj: dict) -> list[FieldError]:
    """Fields the Go validation of a built-in kind requires (as its OpenAPI `required` lists)."""
    node, defs = body_schema(rdef)
    errs: list[FieldError] = []

    def walk(value, n, path):
        n = schema.resolve(n, defs)
        if isinstance(value, dict):
            errs.extend(required(schema.join(path, k)) for k in n.get("required") or [] if k not in value)
            for k, v in value.items():
                sub = schema.child(n, k, defs) if n else None
                if sub and k != "metadata":
                    walk(v, sub, schema.join(path, k))
        elif isinstance(value, list) and isinstance(n.get("items"), dict):
            for i, v in enumerate(value):
                walk(v, n["items"], f"{path}[{i}]")

    if node:
        walk(obj, node, "")
    return [e for e in errs if e.field not in ("metadata", "apiVersion", "kind")]


def _crd_name(crd: dict) -> list[FieldError]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    expected = f"{names.get('plural')}.{spec.get('group')}"
    name = (crd.get("metadata") or {}).get("name")
    if name != expected:
        return [invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')]
    return []
