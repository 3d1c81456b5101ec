"""Kubernetes protobuf request bodies, for the built-in kinds kubectl's typed commands create
(`kubectl create namespace|configmap|secret|serviceaccount|role|rolebinding|clusterrole|
clusterrolebinding`): client-go always sends built-in kinds as protobuf and never falls back to
JSON, so a server that reads only JSON cannot serve those commands.

The body is the `k8s\\x00` magic, then a `runtime.Unknown` (typeMeta=1 {apiVersion=1, kind=2},
raw=2) whose `raw` is the object in its generated.proto message. The messages below are those of
k8s.io/api and k8s.io/apimachinery (field numbers and types as in their generated.proto); the
result is the object as JSON would have carried it. Other kinds answer 415.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

MAGIC = b"k8s\x00"

# message -> field number -> (json name, type, repeated); type is a scalar, "map:<value type>"
# or another message's name.
S, B, I64, BYTES = "string", "bool", "int64", "bytes"
MESSAGES: dict[str, dict[int, tuple[str, str, bool]]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", BYTES, False)},
    "TypeMeta": {1: ("apiVersion", S, False), 2: ("kind", S, False)},
    "Time": {1: ("seconds", I64, False), 2: ("nanos", I64, False)},
    "ObjectMeta": {
        1: ("name", S, False),
        2: ("generateName", S, False),
        3: ("namespace", S, False),
        5: ("uid", S, False),
        6: ("resourceVersion", S, False),
        7: ("generation", I64, False),
        11: ("labels", "map:string", False),
        12: ("annotations", "map:string", False),
        13: ("ownerReferences", "OwnerReference", True),
        14: ("finalizers", S, True),
    },
    "OwnerReference": {
        1: ("kind", S, False),
        3: ("name", S, False),
        4: ("uid", S, False),
        5: ("apiVersion", S, False),
        6: ("controller", B, False),
        7: ("blockOwnerDeletion", B, False),
    },
    "LabelSelector": {1: ("matchLabels", "map:string", False), 2: ("matchExpressions", "Requirement", True)},
    "Requirement": {1: ("key", S, False), 2: ("operator", S, False), 3: ("values", S, True)},
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False)},
    "NamespaceSpec": {1: ("finalizers", S, True)},
    "ConfigMap": {
        1: ("metadata", "ObjectMeta", False),
        2: ("data", "map:string", False),
        3: ("binaryData", "map:bytes", False),
        4: ("immutable", B, False),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta", False),
        2: ("data", "map:bytes", False),
        3: ("type", S, False),
        4: ("stringData", "map:string", False),
        5: ("immutable", B, False),
    },
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta", False),
        2: ("secrets", "ObjectReference", True),
        3: ("imagePullSecrets", "LocalObjectReference", True),
        4: ("automountServiceAccountToken", B, False),
    },
    "ObjectReference": {
        1: ("kind", S, False),
        2: ("namespace", S, False),
        3: ("name", S, False),
        4: ("uid", S, False),
        5: ("apiVersion", S, False),
        6: ("resourceVersion", S, False),
        7: ("fieldPath", S, False),
    },
    "LocalObjectReference": {1: ("name", S, False)},
    "Role": {1: ("metadata", "ObjectMeta", False), 2: ("rules", "PolicyRule", True)},
    "ClusterRole": {
        1: ("metadata", "ObjectMeta", False),
        2: ("rules", "PolicyRule", True),
        3: ("aggregationRule", "AggregationRule", False),
    },
    "AggregationRule": {1: ("clusterRoleSelectors", "LabelSelector", True)},
    "PolicyRule": {
        1: ("verbs", S, True),
        2: ("apiGroups", S, True),
        3: ("resources", S, True),
        4: ("resourceNames", S, True),
        5: ("nonResourceURLs", S, True),
    },
    "RoleBinding": {
        1: ("metadata", "ObjectMeta", False),
        2: ("subjects", "Subject", True),
        3: ("roleRef", "RoleRef", False),
    },
    "Subject": {
        1: ("kind", S, False),
        2: ("apiGroup", S, False),
        3: ("name", S, False),
        4: ("namespace", S, False),
    },
    "RoleRef": {1: ("apiGroup", S, False), 2: ("kind", S, False), 3: ("name", S, False)},
}
MESSAGES["ClusterRoleBinding"] = MESSAGES["RoleBinding"]
KINDS = (
    "Namespace",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
)


class ProtobufError(ValueError):
    """A body that is not a Kubernetes protobuf message of a kind read here."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes):
    """(field number, wire type, value) triples; length-delimited values as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = data[pos : pos + width], pos + width
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        yield number, wire, value


def _scalar(kind: str, value):
    if kind == S:
        return value.decode()
    if kind == BYTES:
        return base64.b64encode(value).decode()
    if kind == B:
        return bool(value)
    return value - (1 << 64) if value >= 1 << 63 else value


def decode_message(name: str, data: bytes) -> dict:
    if name == "Time":
        seconds = dict((n, v) for n, _w, v in _fields(data)).get(1, 0)
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[return-value]
    table = MESSAGES[name]
    out: dict = {}
    for number, _wire, value in _fields(data):
        if number not in table:
            continue  # a field not read here (status, server-set metadata): dropped, as pruning would
        field, kind, repeated = table[number]
        if kind.startswith("map:"):
            entry = dict((n, v) for n, _w, v in _fields(value))
            out.setdefault(field, {})[entry.get(1, b"").decode()] = _scalar(kind[4:], entry.get(2, b""))
            continue
        item = decode_message(kind, value) if kind in MESSAGES or kind == "Time" else _scalar(kind, value)
        if item in ("", 0) and not isinstance(item, bool) and not repeated:
            continue  # Go writes its zero values; JSON would have omitted them
        if repeated:
            out.setdefault(field, []).append(item)
        else:
            out[field] = item
    return out


def decode(body: bytes) -> dict:
    """The object a protobuf request body carries, as its JSON form."""
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf body (no k8s\\x00 prefix)")
    unknown = decode_message("Unknown", body[len(MAGIC) :])
    type_meta = unknown.get("typeMeta") or {}
    kind = type_meta.get("kind", "")
    if kind not in KINDS:
        raise ProtobufError(
            f"protobuf bodies of kind {kind or '<none>'} are not read by the local API server"
        )
    obj = decode_message(kind, base64.b64decode(unknown.get("raw", "")))
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
