"""Object metadata validation with kube-apiserver's rules and wording (apimachinery's
`ValidateObjectMeta`): names by the rule of their kind (DNS-1123 subdomain for most, DNS-1123 label
for namespaces, DNS-1035 label for services, path segments for RBAC), label keys and values,
annotation keys and their 256 KiB total, finalizers, owner references.

A product that renders a name or label a real cluster refuses must fail here too, with the
message the user would see there.
"""

from __future__ import annotations

import re

from ladder_testing.apiserver.errors import FieldError, forbidden, invalid, required, too_long

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = r"(" + QUALIFIED_NAME + r")?"
TOTAL_ANNOTATION_BYTES = 256 * 1024


def _full(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


def _pattern_rule(limit: int, pattern: str, message: str):
    """A name rule as apimachinery writes each: at most `limit` characters, matching `pattern`;
    message: its wording up to the regex it quotes."""

    def check(value: str) -> list[str]:
        errs = [f"must be no more than {limit} characters"] if len(value) > limit else []
        if not _full(pattern, value):
            errs.append(f"{message}regex used for validation is '{pattern}')")
        return errs

    return check


dns1123_subdomain = _pattern_rule(
    253, DNS1123_SUBDOMAIN,
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', ",
)
dns1123_label = _pattern_rule(
    63, DNS1123_LABEL,
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', ",
)
dns1035_label = _pattern_rule(
    63, DNS1035_LABEL,
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', ",
)


def path_segment(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


NAME_RULES = {
    "subdomain": dns1123_subdomain,
    "label": dns1123_label,
    "dns1035": dns1035_label,
    "path": path_segment,
}


def qualified_name(value: str) -> list[str]:
    """A label or annotation key: an optional DNS subdomain prefix and '/', then a name of at most
    63 characters."""
    errs = []
    prefix, _, name = value.rpartition("/")
    if "/" in value:
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + e for e in dns1123_subdomain(prefix)]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _full(QUALIFIED_NAME, name):
        errs.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            f"validation is '{QUALIFIED_NAME}')"
        )
    if value.count("/") > 1:
        errs = [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
            f"used for validation is '{QUALIFIED_NAME}') with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    return errs


label_value = _pattern_rule(
    63, LABEL_VALUE,
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', ",
)


def _string_map(meta: dict, key: str) -> tuple[dict, list[FieldError]]:
    value = meta.get(key)
    if value is None:
        return {}, []
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return {}, [invalid(f"metadata.{key}", value, "must be a map of string keys to string values")]
    return value, []


def validate_labels(meta: dict, path: str = "metadata.labels") -> list[FieldError]:
    labels, errs = _string_map(meta, "labels")
    for key, value in labels.items():
        errs += [invalid(path, key, e) for e in qualified_name(key)]
        errs += [invalid(f"{path}", value, e) for e in label_value(value)]
    return errs


def validate_annotations(meta: dict) -> list[FieldError]:
    annotations, errs = _string_map(meta, "annotations")
    total = 0
    for key, value in annotations.items():
        errs += [invalid("metadata.annotations", key, e) for e in qualified_name(key.lower())]
        total += len(key.encode()) + len(value.encode())
    if total > TOTAL_ANNOTATION_BYTES:
        errs.append(too_long("metadata.annotations", TOTAL_ANNOTATION_BYTES))
    return errs


def validate_finalizers(meta: dict) -> list[FieldError]:
    errs = []
    for i, fin in enumerate(meta.get("finalizers") or []):
        if not isinstance(fin, str):
            errs.append(invalid(f"metadata.finalizers[{i}]", fin, "must be a string"))
            continue
        errs += [invalid("metadata.finalizers", fin, e) for e in qualified_name(fin)]
    return errs


def validate_owner_references(meta: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    refs = meta.get("ownerReferences") or []
    controllers = 0
    for i, ref in enumerate(refs):
        path = f"metadata.ownerReferences[{i}]"
        if not isinstance(ref, dict):
            errs.append(invalid(path, ref, "must be an object"))
            continue
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                errs.append(
                    invalid(f"{path}.{key}", ref.get(key, ""), f"{key} must not be empty")
                    if key != "uid"
                    else invalid(f"{path}.uid", "", "uid must not be empty")
                )
        controllers += bool(ref.get("controller"))
    if controllers > 1:
        errs.append(
            invalid("metadata.ownerReferences", refs, "Only one reference can have Controller set to true")
        )
    return errs


def validate_name(meta: dict, rule: str) -> list[FieldError]:
    name = meta.get("name")
    if not name:
        if meta.get("generateName"):
            return []
        return [required("metadata.name", "name or generateName is required")]
    if not isinstance(name, str):
        return [invalid("metadata.name", name, "must be a string")]
    return [invalid("metadata.name", name, e) for e in NAME_RULES[rule](name)]


def validate_generate_name(meta: dict, rule: str) -> list[FieldError]:
    """generateName is validated as a name with its trailing '-' allowed (the suffix comes later)."""
    gen = meta.get("generateName")
    if not gen or meta.get("name"):
        return []
    probe = gen[:-1] if gen.endswith("-") else gen
    if not probe:
        return []
    return [invalid("metadata.generateName", gen, e) for e in NAME_RULES[rule](probe)]


def validate_metadata(meta: dict, rule: str, namespaced: bool) -> list[FieldError]:
    """Everything `ValidateObjectMeta` checks that a client can get wrong."""
    if not isinstance(meta, dict):
        return [invalid("metadata", meta, "must be an object")]
    errs = validate_name(meta, rule) + validate_generate_name(meta, rule)
    ns = meta.get("namespace")
    if namespaced and ns:
        errs += [invalid("metadata.namespace", ns, e) for e in dns1123_label(ns)]
    if not namespaced and ns:
        errs.append(forbidden("metadata.namespace", "not allowed on this type"))
    errs += validate_labels(meta)
    errs += validate_annotations(meta)
    errs += validate_finalizers(meta)
    errs += validate_owner_references(meta)
    return errs
