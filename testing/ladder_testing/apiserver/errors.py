"""API errors as kube-apiserver answers them: a `Status` object with a code, a reason and, for
validation failures, one cause per field (`metav1.StatusCause`), so clients that read the causes
(kubectl, the operator's 422 handling) see what a real cluster would tell them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
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


def go_float(value: float) -> str:
    """A float64 as Go's `%v` prints it: the shortest digits, exponent form below 1e-4 and from 1e6
    (strconv's 'g' with the shortest precision: 100000, 1e+06, 1.234567e+06, 0.0001, 1e-05)."""
    digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()[1:]
    point = len(digits) + exponent  # position of the decimal point
    if -4 <= point - 1 < 6:
        return repr(float(value)).removesuffix(".0") if "e" not in repr(float(value)) else f"{value:f}"
    mantissa = "".join(map(str, digits))
    mantissa = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    sign = "-" if value < 0 else ""
    return f"{sign}{mantissa}e{point - 1:+03d}"


def quote(value: Any) -> str:
    """A value as a field error shows it (Go's `%q` for strings, `%v` for numbers, JSON else)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
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
