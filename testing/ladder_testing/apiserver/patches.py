"""The three patch formats of the Kubernetes API: JSON patch (RFC 6902), JSON merge patch (RFC 7386),
and server-side apply's field ownership (structured-merge-diff, reduced to what it guarantees).

Field paths use the API server's own element spelling (`f:name`, `k:{"id":"x"}`), so the
`managedFields` the server shows read like a real cluster's. List types come from the schema
(`x-kubernetes-list-type: map` + `x-kubernetes-list-map-keys`); every other list is atomic, as
in Kubernetes. Merge patches replace lists whole: that is the very behaviour the project's
status writers must avoid, so it is reproduced faithfully.
"""

from __future__ import annotations

import copy
import json
from typing import Any

MISSING = object()
Path = tuple[str, ...]

# Kubernetes' ObjectMeta is not in CRD schemas; these are the parts whose list types matter.
METADATA_SCHEMA = {
    "type": "object",
    "properties": {
        "ownerReferences": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
            "items": {"type": "object"},
        },
    },
}
# Fields the server owns; never part of anyone's field set.
SYSTEM_METADATA = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
}


class PatchError(Exception):
    """A patch that cannot be applied (failed `test`, bad path): 422 Unprocessable Entity."""


# --- JSON patch ---------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict):
            if p not in cur:
                raise PatchError(f"path element {p!r} not found")
            cur = cur[p]
        elif isinstance(cur, list):
            try:
                cur = cur[int(p)]
            except (ValueError, IndexError) as err:
                raise PatchError(f"bad list index {p!r}") from err
        else:
            raise PatchError(f"cannot descend into a scalar at {p!r}")
    return cur


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                idx = int(last)
            except ValueError as err:
                raise PatchError(f"bad list index {last!r}") from err
            if idx > len(parent) or idx < 0:
                raise PatchError(f"list index {idx} out of range")
            parent.insert(idx, value)
    else:
        raise PatchError("cannot add into a scalar")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path element {last!r} not found")
        return parent.pop(last)
    if isinstance(parent, list):
        try:
            return parent.pop(int(last))
        except (ValueError, IndexError) as err:
            raise PatchError(f"bad list index {last!r}") from err
    raise PatchError("cannot remove from a scalar")


def apply_json_patch(doc: Any, ops: list[dict]) -> Any:
    """Apply RFC 6902 operations to a copy of `doc`; all or nothing."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        kind = op.get("op")
        parts = _pointer(op.get("path", ""))
        if kind == "test":
            try:
                actual = _resolve(doc, parts)
            except PatchError:
                actual = MISSING
            if actual is MISSING or actual != op.get("value"):
                raise PatchError(
                    f"test operation failed: {op.get('path')} is {None if actual is MISSING else actual!r}, "
                    f"not {op.get('value')!r}"
                )
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            if not parts:
                doc = copy.deepcopy(op.get("value"))
                continue
            _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            value = _remove(doc, src) if kind == "move" else copy.deepcopy(_resolve(doc, src))
            doc = _add(doc, parts, value)
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}")
    return doc


# --- JSON merge patch ---------------------------------------------------------------------------


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# --- server-side apply --------------------------------------------------------------------------


def child_schema(node: dict | None, key: str) -> dict:
    if not node:
        return {}
    props = node.get("properties") or {}
    if key in props:
        return props[key]
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def list_map_keys(node: dict | None) -> list[str] | None:
    if node and node.get("x-kubernetes-list-type") == "map":
        return list(node.get("x-kubernetes-list-map-keys") or [])
    return None


def entry_element(item: dict, keys: list[str]) -> str:
    return "k:" + json.dumps({k: item.get(k) for k in keys}, sort_keys=True, separators=(",", ":"))


def field_set(value: Any, node: dict | None, prefix: Path = ()) -> set[Path]:
    """The paths a value sets: leaves, list-map entries, and empty maps."""
    out: set[Path] = set()
    if isinstance(value, dict):
        if not value and prefix:
            out.add(prefix)
        for k, v in value.items():
            out |= field_set(v, child_schema(node, k), prefix + ("f:" + k,))
        return out
    keys = list_map_keys(node)
    if isinstance(value, list) and keys:
        items = (node or {}).get("items") or {}
        for item in value:
            if not isinstance(item, dict):
                continue
            entry = prefix + (entry_element(item, keys),)
            out.add(entry)
            out |= field_set(item, items, entry)
        if not value:
            out.add(prefix)
        return out
    if prefix:
        out.add(prefix)
    return out


def object_field_set(obj: dict, schema: dict, status_only: bool | None) -> set[Path]:
    """Field set of a whole object, scoped to the main resource (False), /status (True) or both."""
    root = {"properties": {**(schema.get("properties") or {}), "metadata": METADATA_SCHEMA}}
    out: set[Path] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if status_only is True and key != "status":
            continue
        if status_only is False and key == "status":
            continue
        if key == "metadata":
            value = {k: v for k, v in (value or {}).items() if k not in SYSTEM_METADATA}
            if not value:
                continue
        out |= field_set(value, child_schema(root, key), ("f:" + key,))
    return out


def _entry_index(items: list, keys: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, item in enumerate(items):
        if isinstance(item, dict):
            index.setdefault(entry_element(item, keys), i)
    return index


def _find_entry(items: list, element: str, keys_node: dict | None, cache: dict | None = None) -> int:
    """The index of a list-map entry. With `cache` (lists not changed meanwhile), each list is
    indexed once: status lists hold thousands of entries and a field set as many paths."""
    keys = list_map_keys(keys_node) or []
    if cache is None:
        return _entry_index(items, keys).get(element, -1)
    if id(items) not in cache:
        cache[id(items)] = (items, _entry_index(items, keys))  # the list is kept: its id stays its own
    return cache[id(items)][1].get(element, -1)


def get_path(obj: Any, path: Path, schema: dict, cache: dict | None = None) -> Any:
    cur, node = obj, {"properties": {**(schema.get("properties") or {}), "metadata": METADATA_SCHEMA}}
    for el in path:
        if el.startswith("f:"):
            if not isinstance(cur, dict) or el[2:] not in cur:
                return MISSING
            cur, node = cur[el[2:]], child_schema(node, el[2:])
        else:
            if not isinstance(cur, list):
                return MISSING
            idx = _find_entry(cur, el, node, cache)
            if idx < 0:
                return MISSING
            cur, node = cur[idx], (node or {}).get("items") or {}
    return cur


def remove_path(obj: Any, path: Path, schema: dict) -> None:
    cur, node = obj, {"properties": {**(schema.get("properties") or {}), "metadata": METADATA_SCHEMA}}
    for i, el in enumerate(path):
        last = i == len(path) - 1
        if el.startswith("f:"):
            if not isinstance(cur, dict) or el[2:] not in cur:
                return
            if last:
                del cur[el[2:]]
                return
            cur, node = cur[el[2:]], child_schema(node, el[2:])
        else:
            if not isinstance(cur, list):
                return
            idx = _find_entry(cur, el, node)
            if idx < 0:
                return
            if last:
                cur.pop(idx)
                return
            cur, node = cur[idx], (node or {}).get("items") or {}


def merge_applied(current: Any, applied: Any, node: dict | None) -> Any:
    """Merge an applied configuration into the live value: maps and list-maps by key, the rest
    replaced."""
    if isinstance(applied, dict):
        out = copy.deepcopy(current) if isinstance(current, dict) else {}
        for k, v in applied.items():
            out[k] = merge_applied(out.get(k, MISSING), v, child_schema(node, k))
        return out
    keys = list_map_keys(node)
    if isinstance(applied, list) and keys and isinstance(current, list):
        items_node = (node or {}).get("items") or {}
        out = copy.deepcopy(current)
        index = _entry_index(out, keys)
        for item in applied:
            if not isinstance(item, dict):
                continue
            element = entry_element(item, keys)
            if element in index:
                out[index[element]] = merge_applied(out[index[element]], item, items_node)
            else:
                index[element] = len(out)
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(applied)


def changed_paths(old: dict, new: dict, schema: dict, status_only: bool | None) -> set[Path]:
    """Paths whose value differs between two versions of an object (set, changed or removed)."""
    old_set = object_field_set(old, schema, status_only)
    new_set = object_field_set(new, schema, status_only)
    out = {p for p in old_set - new_set}
    cache: dict = {}
    for p in new_set:
        if p in old_set and get_path(old, p, schema, cache) == get_path(new, p, schema, cache):
            continue
        out.add(p)
    return out


def fields_v1(paths: set[Path]) -> dict:
    """Render a field set the way `metadata.managedFields[].fieldsV1` shows it."""
    root: dict = {}
    for path in paths:
        cur = root
        for el in path:
            cur = cur.setdefault(el, {})
        if path and path[-1].startswith("k:"):
            cur.setdefault(".", {})
    return root


def paths_from_fields_v1(tree: dict, prefix: Path = ()) -> set[Path]:
    """The field set a `fieldsV1` tree stands for (the inverse of `fields_v1`): a client may write
    managedFields itself, as `kubectl apply --server-side` does migrating from client-side apply."""
    out: set[Path] = set()
    for key, sub in (tree or {}).items():
        if key == ".":
            out.add(prefix)
        elif not sub:
            out.add(prefix + (key,))
        else:
            out |= paths_from_fields_v1(sub, prefix + (key,))
    return out


def is_prefix(prefix: Path, path: Path) -> bool:
    return len(prefix) <= len(path) and path[: len(prefix)] == prefix


# --- structural pruning -------------------------------------------------------------------------


def prune(value: Any, node: dict | None) -> Any:
    """Drop fields a structural schema does not declare, as the API server does for custom
    resources (unless `x-kubernetes-preserve-unknown-fields`). A writer that relies on a field the
    CRD lacks loses it silently on a real cluster; here too, so tests see it."""
    if not node or node.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict):
        props = node.get("properties")
        extra = node.get("additionalProperties")
        if props is None and not isinstance(extra, dict):
            return value
        out = {}
        for k, v in value.items():
            if props is not None and k in props:
                out[k] = prune(v, props[k])
            elif isinstance(extra, dict):
                out[k] = prune(v, extra)
        return out
    if isinstance(value, list):
        items = node.get("items")
        return [prune(v, items) for v in value] if isinstance(items, dict) else value
    return value


def prune_object(obj: dict, schema: dict) -> dict:
    if not schema or not schema.get("properties"):
        return obj
    out = {}
    for k, v in obj.items():
        if k in ("apiVersion", "kind", "metadata"):
            out[k] = v
        elif k in schema["properties"]:
            out[k] = prune(v, schema["properties"][k])
        elif schema.get("x-kubernetes-preserve-unknown-fields"):
            out[k] = v
    return out
