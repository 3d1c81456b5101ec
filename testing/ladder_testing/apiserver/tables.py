"""Server-side printing: the `meta.k8s.io/v1` Table a real API server returns when a client asks
for it (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`, what `kubectl get` sends).

Custom resources get a Name column and their CRD's `additionalPrinterColumns` (JSONPath evaluated,
cells typed as the apiextensions server types them: dates as ages, numbers as numbers, strings
printed by JSONPath); built-in kinds get the columns of kube-apiserver's own printers for the
kinds served here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ladder_testing.apiserver.registry import ResourceDef

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for a meta.k8s.io Table (v1 or v1beta1) before plain JSON."""
    for part in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
        if part.split(";")[0].strip() in ("application/json", "*/*"):
            return False
    return False


# --- time ---------------------------------------------------------------------------------------


def parse_time(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None


def human_duration(seconds: float) -> str:
    """An age as kubectl shows it: 45s, 3m20s, 12m, 5h4m, 9h, 3d4h, 20d, 2y30d, 9y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 - 365 * (hours // (24 * 365))
        return f"{hours // (24 * 365)}y{days}d" if days else f"{hours // (24 * 365)}y"
    return f"{hours // (24 * 365)}y"


def age(stamp: Any, now: datetime) -> str:
    when = parse_time(stamp) if isinstance(stamp, str) else None
    return human_duration((now - when).total_seconds()) if when else "<unknown>"


# --- JSONPath (the subset printer columns use) --------------------------------------------------

_STEP = re.compile(
    r"\.([A-Za-z0-9_\-$]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*==\s*(\"[^\"]*\"|'[^']*')\)\]"
)


def jsonpath(obj: Any, path: str) -> list[Any]:
    """All values `path` selects: `.a.b`, `[0]`, `[*]`, `[?(@.type=="Ready")]`."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    values, pos = [obj], 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if not m:
            raise ValueError(f"unsupported JSONPath {path!r} at {text[pos:]!r}")
        pos = m.end()
        values = [v for cur in values for v in _step(cur, m)]
    return values


def _step(cur: Any, m: re.Match) -> list[Any]:
    field, index, filter_key, filter_value = m.groups()
    if field is not None:
        return [cur[field]] if isinstance(cur, dict) and field in cur else []
    if index is not None:
        if not isinstance(cur, list):
            return []
        if index == "*":
            return list(cur)
        return [cur[int(index)]] if int(index) < len(cur) else []
    wanted = filter_value[1:-1]
    out = []
    for item in cur if isinstance(cur, list) else []:
        got = jsonpath(item, "." + filter_key)
        if got and str(got[0]) == wanted:
            out.append(item)
    return out


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def crd_cell(column: dict, obj: dict, now: datetime) -> Any:
    """One additionalPrinterColumn's cell, typed as kube-apiserver types it (None when absent)."""
    try:
        found = jsonpath(obj, column["jsonPath"])
    except ValueError:
        return None
    if not found:
        return None
    value, ctype = found[0], column.get("type", "string")
    if ctype == "string":
        return _text(value)
    if ctype == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if ctype == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if ctype == "boolean" and isinstance(value, bool):
        return value
    if ctype == "date" and isinstance(value, str):
        return age(value, now) if parse_time(value) else "<invalid>"
    return None


# --- built-in printers --------------------------------------------------------------------------

Cell = Callable[[dict, datetime], Any]


def _meta(obj: dict) -> dict:
    return obj.get("metadata") or {}


def _created(obj: dict, now: datetime) -> str:
    return age(_meta(obj).get("creationTimestamp"), now)


def _created_at(obj: dict, _now: datetime) -> str:
    return _meta(obj).get("creationTimestamp") or ""


def _pod_ready(obj: dict, _now: datetime) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    total = len((obj.get("spec") or {}).get("containers") or [])
    return f"{sum(bool(c.get('ready')) for c in statuses)}/{total}"


def _event_object(obj: dict, _now: datetime) -> str:
    ref = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{(ref.get('kind') or '').lower()}/{ref.get('name', '')}"


def _event_last_seen(obj: dict, now: datetime) -> str:
    stamp = obj.get("lastTimestamp") or obj.get("eventTime") or _meta(obj).get("creationTimestamp")
    return age(stamp, now)


def _col(name: str, ctype: str, fn: Cell, priority: int = 0, fmt: str = "") -> tuple:
    return (name, ctype, fmt, priority, fn)


_AGE = _col("Age", "string", _created)
_EVENT = [
    _col("Last Seen", "string", _event_last_seen),
    _col("Type", "string", lambda o, n: o.get("type", "")),
    _col("Reason", "string", lambda o, n: o.get("reason", "")),
    _col("Object", "string", _event_object),
    _col("Message", "string", lambda o, n: o.get("message") or o.get("note") or ""),
    _col("Name", "string", lambda o, n: _meta(o).get("name", ""), priority=1, fmt="name"),
]
BUILTIN_COLUMNS: dict[tuple[str, str], list[tuple]] = {
    ("", "namespaces"): [
        _col("Status", "string", lambda o, n: (o.get("status") or {}).get("phase", "")),
        _AGE,
    ],
    ("", "configmaps"): [
        _col("Data", "integer", lambda o, n: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        _AGE,
    ],
    ("", "secrets"): [
        _col("Type", "string", lambda o, n: o.get("type", "Opaque")),
        _col("Data", "integer", lambda o, n: len(o.get("data") or {})),
        _AGE,
    ],
    ("", "serviceaccounts"): [_col("Secrets", "integer", lambda o, n: len(o.get("secrets") or [])), _AGE],
    ("", "pods"): [
        _col("Ready", "string", _pod_ready),
        _col("Status", "string", lambda o, n: (o.get("status") or {}).get("phase", "Pending")),
        _col(
            "Restarts",
            "string",
            lambda o, n: str(
                sum(c.get("restartCount", 0) for c in (o.get("status") or {}).get("containerStatuses") or [])
            ),
        ),
        _AGE,
    ],
    ("", "services"): [
        _col("Type", "string", lambda o, n: (o.get("spec") or {}).get("type", "ClusterIP")),
        _col("Cluster-IP", "string", lambda o, n: (o.get("spec") or {}).get("clusterIP", "<none>")),
        _AGE,
    ],
    ("", "events"): _EVENT,
    ("events.k8s.io", "events"): _EVENT,
    ("rbac.authorization.k8s.io", "roles"): [_col("Created At", "date", _created_at)],
    ("rbac.authorization.k8s.io", "clusterroles"): [_col("Created At", "date", _created_at)],
    ("rbac.authorization.k8s.io", "rolebindings"): [
        _col(
            "Role",
            "string",
            lambda o, n: "{kind}/{name}".format(**{"kind": "", "name": "", **(o.get("roleRef") or {})}),
        ),
        _AGE,
    ],
    ("rbac.authorization.k8s.io", "clusterrolebindings"): [
        _col(
            "Role",
            "string",
            lambda o, n: "{kind}/{name}".format(**{"kind": "", "name": "", **(o.get("roleRef") or {})}),
        ),
        _AGE,
    ],
    ("coordination.k8s.io", "leases"): [
        _col("Holder", "string", lambda o, n: (o.get("spec") or {}).get("holderIdentity", "")),
        _AGE,
    ],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [_col("Created At", "date", _created_at)],
}


# --- tables -------------------------------------------------------------------------------------


def _columns(rdef: ResourceDef, version: str) -> tuple[list[dict], list[Callable[[dict, datetime], Any]]]:
    defs = [
        {"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0}
    ]
    cells: list[Callable[[dict, datetime], Any]] = [lambda o, n: _meta(o).get("name", "")]
    if rdef.crd:
        for c in rdef.columns.get(version) or []:
            defs.append(
                {
                    "name": c["name"],
                    "type": c.get("type", "string"),
                    "format": c.get("format", ""),
                    "description": c.get("description", ""),
                    "priority": int(c.get("priority", 0)),
                }
            )
            cells.append(lambda o, n, c=c: crd_cell(c, o, n))
        return defs, cells
    columns = BUILTIN_COLUMNS.get(rdef.key, [_AGE])
    if any(c[0] == "Name" for c in columns):  # the kind's printer places Name itself (events)
        defs, cells = [], []
    for name, ctype, fmt, priority, fn in columns:
        description = AGE_DESCRIPTION if name == "Age" else ""
        defs.append(
            {"name": name, "type": ctype, "format": fmt, "description": description, "priority": priority}
        )
        cells.append(fn)
    return defs, cells


def _row_object(obj: dict, include: str) -> dict | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def to_table(
    rdef: ResourceDef,
    version: str,
    objs: list[dict],
    list_meta: dict,
    include_object: str = "",
    no_headers=False,
) -> dict:
    """The Table for `objs` (one object for a GET, the items of a list)."""
    if include_object not in ("", "None", "Object", "Metadata"):
        raise ValueError(f"includeObject must be one of None, Object, Metadata, not {include_object!r}")
    now = datetime.now(UTC)
    column_defs, cells = _columns(rdef, version)
    rows = []
    for obj in objs:
        row: dict = {"cells": [fn(obj, now) for fn in cells]}
        embedded = _row_object(obj, include_object)
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [] if no_headers else column_defs,
        "rows": rows,
    }
