"""API errors as kube-apiserver answers them: a `Status` object with a code, a reason and, for
validation failures, one cause per field (`metav1.StatusCause`), so clients that read the causes
(kubectl, the operator's 422 handling) see what a real cluster would tell them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def quote(value: Any) -> str:
    """A value as Go's `%q`/`%v` shows it in field errors: strings quoted, the rest as JSON."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, int) else f"{value:g}"
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class FieldError:
    """One `field.Error`: the path (`spec.ladder.widths[2]`), the reason of its StatusCause and the
    detail text, rendered as the API server renders it (`spec.x: Invalid value: 3: detail`)."""

    field: str
    kind: str  # Invalid, Required, Unsupported, TooLong, TooMany, Duplicate, Forbidden
    detail: str = ""
    value: Any = None
    has_value: bool = False

    REASONS = {
        "Invalid": ("FieldValueInvalid", "Invalid value"),
        "Required": ("FieldValueRequired", "Required value"),
        "Unsupported": ("FieldValueNotSupported", "Unsupported value"),
        "TooLong": ("FieldValueTooLong", "Too long"),
        "TooMany": ("FieldValueTooMany", "Too many"),
        "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
        "Forbidden": ("FieldValueForbidden", "Forbidden"),
    }

    @property
    def body(self) -> str:
        label = self.REASONS[self.kind][1]
        parts = [label]
        if self.has_value:
            parts.append(quote(self.value))
        text = ": ".join(parts)
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body}"

    def cause(self) -> dict:
        return {"reason": self.REASONS[self.kind][0], "message": self.body, "field": self.field}


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(field, "Invalid", detail, value, True)


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(field, "Required", detail)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError(field, "Forbidden", detail)


def too_long(field: str, limit: int, unit: str = "bytes") -> FieldError:
    return FieldError(field, "TooLong", f"may not be more than {limit} {unit}")


def invalid_error(kind: str, group: str, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid, worded as `Kind.group "name" is invalid: field: ...` (brackets around several)."""
    qualified = f"{kind}.{group}" if group else kind
    summary = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{qualified} "{name}" is invalid: {summary}',
        {"name": name, "group": group, "kind": kind, "causes": [e.cause() for e in errors]},
    )
