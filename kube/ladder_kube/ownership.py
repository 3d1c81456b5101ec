"""Who owns what in a status written by several processes: pure functions, no I/O.

Field managers are named `<base>-<incarnation>`, the incarnation being the process's start time
in hex seconds followed by 6 random hex digits, so that managers of one base sort by start time:
a restarted pod's manager is newer than the one of the pod it replaces (their start times differ
by the old pod's whole run; clock skew between nodes is seconds). See ladder_kube.status for
the rule that uses the order.

`merge_fragment` is how a writer accumulates its share (as the server merges an apply), and
`yield_to_newer` removes from a share the fields a newer incarnation of the same writer owns,
read from the object's managedFields (`fieldsV1`, the server's own ownership record).
"""

from __future__ import annotations

import json
import re
import secrets
import time

from ladder_api.crd import LIST_MAPS

STATUS_LIST_KEYS: dict[str, tuple[str, ...]] = {
    field: tuple(keys) for (root, field), keys in LIST_MAPS.items() if root == "status"
}
MAX_MANAGER_LEN = 128  # the API server's limit on fieldManager
_INCARNATION = re.compile(r"^[0-9a-z]+$")


def new_incarnation(now: float | None = None) -> str:
    return f"{int(time.time() if now is None else now):08x}{secrets.token_hex(3)}"


def incarnation_manager(base: str, incarnation: str | None = None) -> str:
    incarnation = incarnation or new_incarnation()
    if not _INCARNATION.match(incarnation):
        raise ValueError(f"incarnation {incarnation!r}: lower-case letters and digits only")
    manager = f"{base}-{incarnation}"
    if len(manager) > MAX_MANAGER_LEN:
        raise ValueError(f"field manager {manager!r} is longer than {MAX_MANAGER_LEN} characters")
    return manager


def is_newer(other: str, me: str) -> bool:
    """Whether `other` is a later incarnation of the same writer as `me`."""
    base, _, mine = me.rpartition("-")
    other_base, _, theirs = other.rpartition("-")
    return other_base == base and len(theirs) == len(mine) and theirs > mine


def merge_fragment(owned: dict, fragment: dict, keys: dict[str, tuple[str, ...]] = STATUS_LIST_KEYS) -> dict:
    """`owned` with `fragment` merged in, as the server merges an apply: maps by key, list-maps by
    their keys (entries merged field by field), everything else replaced. Pure."""
    out = dict(owned)
    for k, v in fragment.items():
        old = out.get(k)
        if isinstance(v, dict) and isinstance(old, dict):
            out[k] = merge_fragment(old, v, {})
        elif k in keys and isinstance(v, list) and isinstance(old, list):
            by_key = {tuple(e.get(f) for f in keys[k]): e for e in old}
            for entry in v:
                at = tuple(entry.get(f) for f in keys[k])
                by_key[at] = merge_fragment(by_key[at], entry, {}) if at in by_key else entry
            out[k] = list(by_key.values())
        else:
            out[k] = v
    return out


def yield_to_newer(share: dict, managed_fields: list[dict], me: str) -> dict:
    """`share` (a status) without the fields that newer incarnations of `me` own. Entries stay,
    with their key fields, so this writer keeps co-owning them and they are never deleted."""
    out = json.loads(json.dumps(share))
    for mf in managed_fields or []:
        if is_newer(mf.get("manager", ""), me):
            status_fields = (mf.get("fieldsV1") or {}).get("f:status") or {}
            _drop(out, status_fields, STATUS_LIST_KEYS, ())
    return out


def _drop(value: dict, fields: dict, list_keys: dict, protected: tuple[str, ...]) -> None:
    for element, sub in fields.items():
        if not element.startswith("f:"):
            continue
        name = element[2:]
        if name not in value or name in protected:
            continue
        child = value[name]
        if not sub or set(sub) == {"."}:
            del value[name]  # a leaf (or a whole value) the newer writer owns
        elif isinstance(child, list) and name in list_keys:
            _drop_entries(child, sub)
        elif isinstance(child, dict):
            _drop(child, sub, {}, ())


def _drop_entries(entries: list, fields: dict) -> None:
    for element, sub in fields.items():
        if not element.startswith("k:"):
            continue
        key = json.loads(element[2:])
        for entry in entries:
            if isinstance(entry, dict) and all(entry.get(k) == v for k, v in key.items()):
                _drop(entry, sub, {}, tuple(key))
