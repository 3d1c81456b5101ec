"""Label and field selectors, parsed the way the Kubernetes API parses them.

Only what clients of this project send is needed, but the grammar is the full one for labels
(`a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`) so that kubectl-style selectors
written by hand behave as they would against a real cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping


class SelectorError(ValueError):
    """A selector the server cannot parse: answered with 400 BadRequest."""


def _split_top_level(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$")
_CMP_RE = re.compile(r"^([^\s!=]+)\s*(==|!=|=)\s*(\S*)$")
_KEY_RE = re.compile(r"^(!?)([^\s!=(),]+)$")


def parse_label_selector(text: str | None) -> Callable[[Mapping[str, str]], bool]:
    """Return a predicate over an object's labels; an empty selector matches everything."""
    if not text:
        return lambda labels: True
    tests: list[Callable[[Mapping[str, str]], bool]] = []
    for req in _split_top_level(text):
        m = _SET_RE.match(req)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            if op == "in":
                tests.append(lambda lb, k=key, vs=values: lb.get(k) in vs)
            else:
                tests.append(lambda lb, k=key, vs=values: lb.get(k) not in vs)
            continue
        m = _CMP_RE.match(req)
        if m:
            key, op, value = m.groups()
            if op == "!=":
                tests.append(lambda lb, k=key, v=value: lb.get(k) != v)
            else:
                tests.append(lambda lb, k=key, v=value: lb.get(k) == v)
            continue
        m = _KEY_RE.match(req)
        if m:
            neg, key = m.groups()
            if neg:
                tests.append(lambda lb, k=key: k not in lb)
            else:
                tests.append(lambda lb, k=key: k in lb)
            continue
        raise SelectorError(f"unable to parse requirement: {req!r}")
    return lambda labels: all(t(labels) for t in tests)


COMMON_FIELDS = ("metadata.name", "metadata.namespace")
# The fields kube-apiserver lets each built-in kind be selected by (its field label conversions).
BUILTIN_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "events"): (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("events.k8s.io", "events"): (
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "regarding.apiVersion",
        "regarding.resourceVersion",
        "regarding.fieldPath",
        "reason",
        "reportingController",
        "type",
    ),
    ("", "pods"): (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
}


def _lookup(obj: Mapping, path: str) -> str:
    cur: object = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return ""
        cur = cur[part]
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None or isinstance(cur, Mapping | list) else str(cur)


def field_values(obj: Mapping, fields: tuple[str, ...]) -> dict[str, str]:
    """The selectable fields of an object as strings (absent fields are ""), what watch events
    keep so that field-selected watches need not keep whole objects."""
    out = {f: _lookup(obj, f) for f in COMMON_FIELDS + fields}
    if obj.get("source") is not None and "source" in fields:
        out["source"] = _lookup(obj, "source.component")
    return out


def parse_field_selector(text: str | None, fields: tuple[str, ...] = ()) -> Callable[[Mapping], bool]:
    """A predicate over `field_values`: `a=b`, `a==b`, `a!=b`, comma-joined; a field the kind
    cannot be selected by is a 400, as on a real server."""
    if not text:
        return lambda values: True
    allowed = set(COMMON_FIELDS) | set(fields)
    tests = []
    for req in _split_top_level(text):
        m = _CMP_RE.match(req)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{req}'")
        path, op, value = m.groups()
        if path not in allowed:
            raise SelectorError(f"field label not supported: {path}")

        def test(values, f=path, v=value, neg=(op == "!=")):
            actual = values.get(f, "")
            return (actual != v) if neg else (actual == v)

        tests.append(test)
    return lambda values: all(t(values) for t in tests)
