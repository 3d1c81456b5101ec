"""Strategic merge patch, for built-in kinds only (a real server refuses it on custom resources
with 415). The merge rules come from the kinds' schemas (`x-kubernetes-patch-strategy`,
`x-kubernetes-patch-merge-key`): lists with a merge key merge entry by entry, primitive lists with
the merge strategy are unions, the others are replaced. Directives: `$patch: replace|delete`,
`$retainKeys`, `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` (what client-side
`kubectl apply` and `kubectl edit` send).
"""

from __future__ import annotations

import copy
from typing import Any

from ladder_testing.apiserver import schema
from ladder_testing.apiserver.patches import PatchError

DIRECTIVE = "$patch"
DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
ELEMENT_ORDER = "$setElementOrder/"
RETAIN_KEYS = "$retainKeys"


def apply_strategic_patch(original: dict, patch: Any, node: dict, defs: dict | None) -> dict:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _merge_map(copy.deepcopy(original), patch, schema.resolve(node, defs), defs)


def _strategy(node: dict) -> tuple[set[str], str | None]:
    strategies = set(filter(None, (node.get("x-kubernetes-patch-strategy") or "").split(",")))
    return strategies, node.get("x-kubernetes-patch-merge-key")


def _merge_map(original: dict, patch: dict, node: dict, defs: dict | None) -> dict:
    directive = patch.get(DIRECTIVE)
    if directive == "replace":
        return _strip({k: v for k, v in patch.items() if k != DIRECTIVE})
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch directive {directive!r} in a map")
    out = dict(original) if isinstance(original, dict) else {}
    orders = {k[len(ELEMENT_ORDER) :]: v for k, v in patch.items() if k.startswith(ELEMENT_ORDER)}
    for key, value in patch.items():
        if key.startswith("$"):
            if key.startswith(DELETE_PRIMITIVE):
                field = key[len(DELETE_PRIMITIVE) :]
                out[field] = [x for x in out.get(field) or [] if x not in value]
            continue
        sub = schema.child(node, key, defs) or {}
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            if value.get(DIRECTIVE) == "delete":
                out.pop(key, None)
            else:
                out[key] = _merge_map(out.get(key), value, sub, defs)
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, sub, defs, orders.get(key))
        else:
            out[key] = value
    retain = patch.get(RETAIN_KEYS)
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(original: Any, patch: list, node: dict, defs: dict | None, order: list | None) -> list:
    strategies, key = _strategy(node)
    items_node = schema.resolve(node.get("items"), defs) if isinstance(node.get("items"), dict) else {}
    if any(isinstance(p, dict) and p.get(DIRECTIVE) == "replace" for p in patch):
        return _strip([p for p in patch if not (isinstance(p, dict) and DIRECTIVE in p)])
    if "merge" not in strategies:
        return _strip(patch)
    current = list(original) if isinstance(original, list) else []
    if not key:  # a set of primitives
        merged = current + [p for p in patch if p not in current]
    else:
        merged = _merge_keyed(current, patch, key, items_node, defs)
    if order:
        rank = {_ident(o, key): i for i, o in enumerate(order)}
        merged.sort(key=lambda item: rank.get(_ident(item, key), len(rank)))
    return merged


def _ident(item: Any, key: str | None) -> Any:
    return item.get(key) if key and isinstance(item, dict) else repr(item)


def _merge_keyed(current: list, patch: list, key: str, items_node: dict, defs: dict | None) -> list:
    out = list(current)
    for p in patch:
        if not isinstance(p, dict) or key not in p:
            raise PatchError(f"map: {p!r} does not contain declared merge key: {key}")
        idx = next((i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == p[key]), -1)
        if p.get(DIRECTIVE) == "delete":
            if idx >= 0:
                out.pop(idx)
            continue
        if idx >= 0:
            out[idx] = _merge_map(out[idx], p, items_node, defs)
        else:
            out.append(_merge_map({}, p, items_node, defs))
    return out


def _strip(value: Any) -> Any:
    """Drop directives from values that replace what was there."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value
