"""The base model: camelCase on the wire (Kubernetes style), snake_case in Python.

Every model forbids unknown fields so that a typo in a spec is an error naming the field, not a
silently ignored setting.

Every number is finite (`allow_inf_nan=False`), in every model: specs, run configs, status and
results. JSON has no NaN or infinity (Python's json writes `NaN`/`Infinity`, which other readers
refuse), a real API server answers 400 to them, and a writer that once holds one fails every later
status apply. One rule here rather than a check per field, so a field added later is covered too.
A measurement that comes out non-finite is recorded as a failed measurement instead
(ladder_api.status.Result).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
        use_attribute_docstrings=False,
        allow_inf_nan=False,
    )

    def to_wire(self, *, exclude_none: bool = True) -> dict:
        """JSON-ready dict with camelCase keys, as it appears in YAML and the API server."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=exclude_none)
