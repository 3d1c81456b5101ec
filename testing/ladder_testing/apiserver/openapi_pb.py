"""`/openapi/v2` as protobuf: kubectl (client-go's `OpenAPISchema()`) asks for
`application/com.github.proto-openapi.spec.v2@v1.0+protobuf` and accepts nothing else, decoding it
as gnostic's `openapi.v2.Document` (github.com/google/gnostic-models, openapiv2/OpenAPIv2.proto).

The protobuf wire format is small enough to write by hand for the messages a Swagger document of
this server uses; field numbers are those of OpenAPIv2.proto. Vendor extensions, defaults, enums
and examples are `Any` messages carrying YAML text (JSON is YAML), as kube-openapi encodes them.
"""

from __future__ import annotations

import json
import struct
from typing import Any

# --- wire format --------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def string(field: int, value: str | None) -> bytes:
    if not value:
        return b""
    data = value.encode()
    return _key(field, 2) + _varint(len(data)) + data


def message(field: int, body: bytes | None, always: bool = False) -> bytes:
    if body is None or (not body and not always):
        return b""
    return _key(field, 2) + _varint(len(body)) + body


def boolean(field: int, value: Any) -> bytes:
    return _key(field, 0) + b"\x01" if value is True else b""


def int64(field: int, value: Any) -> bytes:
    return _key(field, 0) + _varint(int(value)) if value else b""


def double(field: int, value: Any) -> bytes:
    return _key(field, 1) + struct.pack("<d", float(value)) if value is not None else b""


def repeated_strings(field: int, values) -> bytes:
    return b"".join(_key(field, 2) + _varint(len(v.encode())) + v.encode() for v in values or [])


# --- openapi.v2 messages ------------------------------------------------------------------------


def any_yaml(value: Any) -> bytes:
    """Any{yaml=2}."""
    return string(2, json.dumps(value, separators=(",", ":")) + "\n")


def named_any(name: str, value: Any) -> bytes:
    return string(1, name) + message(2, any_yaml(value), always=True)


def vendor_extensions(field: int, node: dict) -> bytes:
    return b"".join(message(field, named_any(k, v)) for k, v in node.items() if k.startswith("x-"))


def schema(node: dict) -> bytes:
    """Schema: _ref=1 format=2 title=3 description=4 default=5 multiple_of=6 maximum=7
    exclusive_maximum=8 minimum=9 exclusive_minimum=10 max_length=11 min_length=12 pattern=13
    max_items=14 min_items=15 unique_items=16 max_properties=17 min_properties=18 required=19
    enum=20 additional_properties=21 type=22 items=23 all_of=24 properties=25 discriminator=26
    read_only=27 example=30 vendor_extension=31."""
    out = [string(1, node.get("$ref")), string(2, node.get("format")), string(3, node.get("title"))]
    out.append(string(4, node.get("description")))
    if "default" in node:
        out.append(message(5, any_yaml(node["default"]), always=True))
    out += [double(6, node.get("multipleOf")), double(7, node.get("maximum"))]
    out += [boolean(8, node.get("exclusiveMaximum")), double(9, node.get("minimum"))]
    out += [boolean(10, node.get("exclusiveMinimum")), int64(11, node.get("maxLength"))]
    out += [int64(12, node.get("minLength")), string(13, node.get("pattern"))]
    out += [int64(14, node.get("maxItems")), int64(15, node.get("minItems"))]
    out += [boolean(16, node.get("uniqueItems")), int64(17, node.get("maxProperties"))]
    out += [int64(18, node.get("minProperties")), repeated_strings(19, node.get("required"))]
    out += [message(20, any_yaml(v), always=True) for v in node.get("enum") or []]
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out.append(message(21, message(1, schema(extra), always=True), always=True))
    elif isinstance(extra, bool):
        out.append(message(21, _key(2, 0) + (b"\x01" if extra else b"\x00"), always=True))
    if node.get("type"):
        out.append(message(22, repeated_strings(1, [node["type"]])))
    if isinstance(node.get("items"), dict):
        out.append(message(23, message(1, schema(node["items"]), always=True), always=True))
    out += [message(24, schema(s), always=True) for s in node.get("allOf") or []]
    if isinstance(node.get("properties"), dict):
        props = b"".join(message(1, named_schema(k, v)) for k, v in node["properties"].items())
        out.append(message(25, props, always=True))
    if isinstance(node.get("discriminator"), str):
        out.append(string(26, node["discriminator"]))
    out.append(boolean(27, node.get("readOnly")))
    if "example" in node:
        out.append(message(30, any_yaml(node["example"]), always=True))
    out.append(vendor_extensions(31, node))
    return b"".join(out)


def named_schema(name: str, node: dict) -> bytes:
    return string(1, name) + message(2, schema(node), always=True)


def parameter(p: dict) -> bytes:
    """ParametersItem{parameter=1: Parameter{body_parameter=1 | non_body_parameter=2}}."""
    if p.get("in") == "body":
        body = string(1, p.get("description")) + string(2, p["name"]) + string(3, "body")
        body += boolean(4, p.get("required")) + message(5, schema(p.get("schema") or {}), always=True)
        param = message(1, body, always=True)
    else:
        # Query: required=1 in=2 description=3 name=4 type=6 unique_items=20;
        # path: required=1 in=2 description=3 name=4 type=5 unique_items=19.
        query = p.get("in") == "query"
        sub = boolean(1, p.get("required")) + string(2, p["in"]) + string(3, p.get("description"))
        sub += string(4, p["name"]) + string(6 if query else 5, p.get("type"))
        sub += boolean(20 if query else 19, p.get("uniqueItems"))
        param = message(2, message(3 if query else 4, sub, always=True), always=True)
    return message(1, param, always=True)


def operation(op: dict) -> bytes:
    """Operation: tags=1 description=3 operation_id=5 produces=6 consumes=7 parameters=8
    responses=9 vendor_extension=13."""
    out = [
        repeated_strings(1, op.get("tags")),
        string(3, op.get("description")),
        string(5, op.get("operationId")),
    ]
    out += [repeated_strings(6, op.get("produces")), repeated_strings(7, op.get("consumes"))]
    out += [message(8, parameter(p), always=True) for p in op.get("parameters") or []]
    codes = b""
    for code, rsp in (op.get("responses") or {}).items():
        response = string(1, rsp.get("description"))
        if rsp.get("schema"):
            response += message(2, message(1, schema(rsp["schema"]), always=True), always=True)
        value = message(1, response, always=True)  # ResponseValue{response=1}
        codes += message(1, string(1, code) + message(2, value, always=True), always=True)
    out.append(message(9, codes, always=True))
    out.append(vendor_extensions(13, op))
    return b"".join(out)


VERBS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def path_item(item: dict) -> bytes:
    out = [message(n, operation(item[v]), always=True) for v, n in VERBS.items() if v in item]
    out += [message(9, parameter(p), always=True) for p in item.get("parameters") or []]
    return b"".join(out)


def encode_document(doc: dict) -> bytes:
    """Document: swagger=1 info=2 paths=8 definitions=9."""
    info = string(1, doc["info"]["title"]) + string(2, doc["info"]["version"])
    paths = b"".join(
        message(2, string(1, p) + message(2, path_item(item), always=True), always=True)
        for p, item in doc.get("paths", {}).items()
    )
    definitions = b"".join(message(1, named_schema(k, v)) for k, v in doc.get("definitions", {}).items())
    return (
        string(1, doc["swagger"])
        + message(2, info, always=True)
        + message(8, paths, always=True)
        + message(9, definitions, always=True)
    )
