"""What the API server does with an object's schema: prune unknown fields (reporting them, for
`fieldValidation=Strict`), apply defaults, and validate custom resources against their structural
schema (types, formats, enums, bounds, patterns, required fields, list-map keys, and the one CEL
rule that needs no CEL engine, `self == oldSelf`), with kube-apiserver's field paths and wording
(`spec.training.steps: Invalid value: "string": spec.training.steps in body must be of type
integer: "string"`).

Schemas come in two spellings and both are read here: CRD `openAPIV3Schema` nodes (`type: T`,
`nullable: true`, inline) and kubernetes-validate's definitions for built-in kinds (`type: [T,
"null"]`, `$ref: #/$defs/NAME`, resolved through `defs`). Built-in kinds are decoded into Go
structs by a real server, so for them a wrong type is a 400 decode error (`decode_error`), not a
422 (`validate`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import math
import re
from datetime import datetime
from typing import Any

from ladder_testing.apiserver.errors import FieldError, go_float, invalid, quote, required

MISSING = object()
Defs = dict[str, dict]


def resolve(node: Any, defs: Defs | None) -> dict:
    """Follow `$ref`s (built-in definitions); anything that is not a schema reads as {}."""
    while isinstance(node, dict) and "$ref" in node and defs is not None:
        node = defs.get(node["$ref"].rsplit("/", 1)[-1], {})
    return node if isinstance(node, dict) else {}


def types_of(node: dict) -> tuple[list[str], bool]:
    """The node's JSON types and whether null is allowed."""
    t = node.get("type")
    types = [t] if isinstance(t, str) else list(t or [])
    nullable = bool(node.get("nullable")) or "null" in types
    return [x for x in types if x != "null"], nullable


def child(node: dict, key: str, defs: Defs | None) -> dict | None:
    """The schema of `key` inside an object node; None when the key is unknown there."""
    props = node.get("properties")
    if isinstance(props, dict) and key in props:
        return resolve(props[key], defs)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        return resolve(extra, defs)
    if extra is True or props is None or node.get("x-kubernetes-preserve-unknown-fields"):
        return {}
    return None


def _open(node: dict) -> bool:
    """Whether unknown fields are kept as they are (no properties to prune by)."""
    if node.get("x-kubernetes-preserve-unknown-fields"):
        return True
    return node.get("properties") is None and not isinstance(node.get("additionalProperties"), dict)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- pruning ------------------------------------------------------------------------------------


def prune(value: Any, node: Any, defs: Defs | None, path: str, dropped: list[str]) -> Any:
    """Drop fields the schema does not declare, as the API server does (custom resources by their
    structural schema, built-ins by their Go types); `dropped` collects their paths."""
    node = resolve(node, defs)
    if isinstance(value, dict) and node and not _open(node):
        out = {}
        for k, v in value.items():
            sub = child(node, k, defs)
            if sub is None:
                dropped.append(join(path, k))
                continue
            out[k] = prune(v, sub, defs, join(path, k), dropped)
        return out
    if (
        isinstance(value, dict)
        and node.get("x-kubernetes-preserve-unknown-fields")
        and node.get("properties")
    ):
        return {
            k: prune(v, node["properties"][k], defs, join(path, k), dropped) if k in node["properties"] else v
            for k, v in value.items()
        }
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [prune(v, node["items"], defs, f"{path}[{i}]", dropped) for i, v in enumerate(value)]
    return value


# --- defaulting ---------------------------------------------------------------------------------


def apply_defaults(value: Any, node: Any, defs: Defs | None = None) -> Any:
    """Structural defaulting: a missing (or null, where null is not allowed) property with a
    `default` gets it, at every level that exists."""
    node = resolve(node, defs)
    if isinstance(value, dict):
        props = node.get("properties") or {}
        for k, sub in props.items():
            sub = resolve(sub, defs)
            if "default" not in sub:
                continue
            if k not in value or (value[k] is None and not types_of(sub)[1]):
                value[k] = copy.deepcopy(sub["default"])
        for k, v in value.items():
            sub = child(node, k, defs)
            if sub:
                value[k] = apply_defaults(v, sub, defs)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        return [apply_defaults(v, node["items"], defs) for v in value]
    return value


# --- validation of custom resources -------------------------------------------------------------


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_type(value: Any, t: str) -> bool:
    actual = json_type(value)
    if t == "number":
        return actual in ("integer", "number")
    if t == "integer" and actual == "number":
        return math.isfinite(value) and float(value).is_integer()
    return actual == t


def _type_error(path: str, value: Any, expected: str) -> FieldError:
    actual = json_type(value)
    return invalid(path, actual, f"{path} in body must be of type {expected}: {json.dumps(actual)}")


def _format_error(path: str, value: Any, fmt: str) -> FieldError | None:
    if not isinstance(value, str) and fmt not in ("int32", "int64"):
        return None
    ok = True
    if fmt == "date-time":
        ok = re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value or "") is not None
        if ok:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                ok = False
    elif fmt == "date":
        ok = re.fullmatch(r"\d{4}-\d\d-\d\d", value) is not None
    elif fmt == "byte":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            ok = False
    elif fmt == "int32" and isinstance(value, int) and not isinstance(value, bool):
        ok = -(2**31) <= value < 2**31
    elif fmt == "int64" and isinstance(value, int) and not isinstance(value, bool):
        ok = -(2**63) <= value < 2**63
    if ok:
        return None
    return invalid(path, value, f"{path} in body must be of type {fmt}: {json.dumps(value)}")


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _bounds(path: str, value: Any, node: dict) -> list[FieldError]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _numeric_bounds(path, value, node)
    if isinstance(value, str):
        return _string_bounds(path, value, node)
    if isinstance(value, list | dict):
        return _size_bounds(path, value, node)
    return []


def _numeric_bounds(path: str, value: float, node: dict) -> list[FieldError]:
    errs = []
    lo, hi, step = node.get("minimum"), node.get("maximum"), node.get("multipleOf")
    if lo is not None and (value <= lo if node.get("exclusiveMinimum") is True else value < lo):
        relation = "greater than" if node.get("exclusiveMinimum") is True else "greater than or equal to"
        errs.append(invalid(path, value, f"{path} in body should be {relation} {go_float(lo)}"))
    if hi is not None and (value >= hi if node.get("exclusiveMaximum") is True else value > hi):
        relation = "less than" if node.get("exclusiveMaximum") is True else "less than or equal to"
        errs.append(invalid(path, value, f"{path} in body should be {relation} {go_float(hi)}"))
    if step and not float(value / step).is_integer():
        errs.append(invalid(path, value, f"{path} in body should be a multiple of {go_float(step)}"))
    return errs


def _string_bounds(path: str, value: str, node: dict) -> list[FieldError]:
    errs = []
    longest, shortest = node.get("maxLength"), node.get("minLength")
    if longest is not None and len(value) > longest:
        errs.append(FieldError(path, "TooLong", f"may not be more than {longest} {_plural(longest, 'byte')}"))
    if shortest is not None and len(value) < shortest:
        errs.append(invalid(path, value, f"{path} in body should be at least {shortest} chars long"))
    if node.get("pattern") and re.search(node["pattern"], value) is None:
        errs.append(invalid(path, value, f"{path} in body should match '{node['pattern']}'"))
    return errs


def _size_bounds(path: str, value: list | dict, node: dict) -> list[FieldError]:
    """maxItems/minItems of lists, maxProperties/minProperties of maps."""
    most, least, unit = (
        ("maxItems", "minItems", "items")
        if isinstance(value, list)
        else (
            "maxProperties",
            "minProperties",
            "properties",
        )
    )
    errs = []
    if node.get(most) is not None and len(value) > node[most]:
        detail = f"must have at most {node[most]} {_plural(node[most], 'item')}"
        errs.append(FieldError(path, "TooMany", detail, len(value), True))
    if node.get(least) is not None and len(value) < node[least]:
        errs.append(invalid(path, value, f"{path} in body should have at least {node[least]} {unit}"))
    return errs


def _uniqueness(path: str, value: list, node: dict) -> list[FieldError]:
    keys = node.get("x-kubernetes-list-map-keys") if node.get("x-kubernetes-list-type") == "map" else None
    seen: set[str] = set()
    errs = []
    for i, item in enumerate(value):
        if keys is not None:
            ident = {k: item.get(k) for k in keys} if isinstance(item, dict) else item
        elif node.get("x-kubernetes-list-type") == "set" or node.get("uniqueItems"):
            ident = item
        else:
            return []
        token = json.dumps(ident, sort_keys=True)
        if token in seen:
            errs.append(FieldError(f"{path}[{i}]", "Duplicate", "", ident, True))
        seen.add(token)
    return errs


def _combinators(path: str, value: Any, node: dict, defs: Defs | None) -> list[FieldError]:
    errs = []
    for sub in node.get("allOf") or []:
        errs += validate(value, sub, defs, path)
    if node.get("anyOf") and not any(not validate(value, s, defs, path) for s in node["anyOf"]):
        errs.append(invalid(path, value, f"{path} in body must validate at least one schema (anyOf)"))
    if node.get("oneOf"):
        passing = sum(not validate(value, s, defs, path) for s in node["oneOf"])
        if passing != 1:
            errs.append(invalid(path, value, f"{path} in body must validate one and only one schema (oneOf)"))
    if isinstance(node.get("not"), dict) and not validate(value, node["not"], defs, path):
        errs.append(invalid(path, value, f"{path} in body should not validate the schema (not)"))
    return errs


def _immutability(path: str, value: Any, node: dict, old: Any) -> list[FieldError]:
    """`x-kubernetes-validations` transition rules of the form `self == oldSelf`, checked on update
    (other CEL rules need a CEL engine and are not evaluated here)."""
    errs = []
    if old is MISSING:
        return errs
    for rule in node.get("x-kubernetes-validations") or []:
        if re.sub(r"\s+", "", rule.get("rule", "")) == "self==oldSelf" and value != old:
            errs.append(
                invalid(path, json_type(value), rule.get("message") or "failed rule: self == oldSelf")
            )
    return errs


def validate(
    value: Any, node: Any, defs: Defs | None = None, path: str = "", old: Any = MISSING
) -> list[FieldError]:
    """Field errors of `value` against a structural schema node; `old` is the value before an
    update (for transition rules)."""
    node = resolve(node, defs)
    if not node:
        return []
    types, nullable = types_of(node)
    if value is None:
        if nullable or not types:
            return []
        return [_type_error(path, value, types[0])]
    if node.get("x-kubernetes-int-or-string"):
        if not (_is_type(value, "integer") or isinstance(value, str)):
            return [_type_error(path, value, "integer or string")]
    elif types and not any(_is_type(value, t) for t in types):
        return [_type_error(path, value, types[0])]
    errs: list[FieldError] = []
    if "enum" in node and value not in node["enum"]:
        allowed = ", ".join(json.dumps(v if isinstance(v, str) else quote(v)) for v in node["enum"])
        errs.append(FieldError(path, "Unsupported", f"supported values: {allowed}", value, True))
    if node.get("format"):
        err = _format_error(path, value, node["format"])
        errs += [err] if err else []
    errs += _bounds(path, value, node)
    errs += _combinators(path, value, node, defs)
    errs += _immutability(path, value, node, old)
    if isinstance(value, dict):
        errs += _validate_object(path, value, node, defs, old)
    elif isinstance(value, list):
        errs += _uniqueness(path, value, node)
        items = node.get("items")
        if isinstance(items, dict):
            olds = _correlated(value, old, node)
            for i, item in enumerate(value):
                errs += validate(item, items, defs, f"{path}[{i}]", olds[i])
    return errs


def _correlated(value: list, old: Any, node: dict) -> list:
    """The old item each new item is compared with by transition rules: list-map entries by their
    keys (as kube-apiserver correlates them); items of other lists are not correlated."""
    keys = node.get("x-kubernetes-list-map-keys") if node.get("x-kubernetes-list-type") == "map" else None
    if not keys or not isinstance(old, list):
        return [MISSING] * len(value)
    by_key = {json.dumps([o.get(k) for k in keys]): o for o in old if isinstance(o, dict)}
    return [
        by_key.get(json.dumps([v.get(k) for k in keys]), MISSING) if isinstance(v, dict) else MISSING
        for v in value
    ]


def _validate_object(path: str, value: dict, node: dict, defs: Defs | None, old: Any) -> list[FieldError]:
    errs = [required(join(path, k)) for k in node.get("required") or [] if k not in value]
    props = node.get("properties") or {}
    extra = node.get("additionalProperties")
    old_map = old if isinstance(old, dict) else {}
    for k, v in value.items():
        if k in props:
            errs += validate(v, props[k], defs, join(path, k), old_map.get(k, MISSING))
        elif isinstance(extra, dict):
            errs += validate(v, extra, defs, f"{path}[{k}]", old_map.get(k, MISSING))
    return errs


# --- decoding of built-in kinds -----------------------------------------------------------------

GO_TYPES = {
    "string": "string",
    "integer": "int64",
    "number": "float64",
    "boolean": "bool",
    "array": "[]",
    "object": "map",
}


def decode_error(value: Any, node: Any, defs: Defs | None, path: str = "") -> str | None:
    """The first value a real server could not decode into the Go type (`json: cannot unmarshal
    string into Go struct field ...`); None when all fields decode."""
    node = resolve(node, defs)
    if not node or value is None:
        return None
    alternatives = [resolve(s, defs) for s in node.get("oneOf") or []]
    if alternatives:
        if any(decode_error(value, a, defs, path) is None for a in alternatives):
            return None
        return _unmarshal(value, "string", path)
    types, _nullable = types_of(node)
    if types and not any(_is_type(value, t) for t in types):
        return _unmarshal(value, types[0], path)
    if isinstance(value, dict):
        for k, v in value.items():
            sub = child(node, k, defs)
            err = decode_error(v, sub, defs, join(path, k)) if sub else None
            if err:
                return err
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, v in enumerate(value):
            err = decode_error(v, node["items"], defs, f"{path}[{i}]")
            if err:
                return err
    return None


def _unmarshal(value: Any, expected: str, path: str) -> str:
    actual = {"integer": "number", "number": "number", "array": "array", "object": "object"}.get(
        json_type(value), json_type(value)
    )
    actual = "bool" if actual == "boolean" else actual
    go_type = GO_TYPES.get(expected, expected)
    return f"json: cannot unmarshal {actual} into Go struct field .{path} of type {go_type}"
