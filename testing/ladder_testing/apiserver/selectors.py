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


def parse_field_selector(text: str | None) -> Callable[[Mapping], bool]:
    """Field selectors over metadata.name / metadata.namespace (all that kubectl and kopf use)."""
    if not text:
        return lambda obj: True
    tests = []
    for req in _split_top_level(text):
        m = _CMP_RE.match(req)
        if not m:
            raise SelectorError(f"unable to parse field requirement: {req!r}")
        path, op, value = m.groups()
        if path not in ("metadata.name", "metadata.namespace"):
            raise SelectorError(f"field label not supported: {path}")
        field = path.split(".", 1)[1]

        def test(obj, f=field, v=value, neg=(op == "!=")):
            actual = obj.get("metadata", {}).get(f, "")
            return (actual != v) if neg else (actual == v)

        tests.append(test)
    return lambda obj: all(t(obj) for t in tests)
