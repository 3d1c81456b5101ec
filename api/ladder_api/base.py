"""The base model: camelCase on the wire (Kubernetes style), snake_case in Python.

Every model forbids unknown fields so that a typo in a spec is an error naming the field, not a
silently ignored setting.
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
    )

    def to_wire(self, *, exclude_none: bool = True) -> dict:
        """JSON-ready dict with camelCase keys, as it appears in YAML and the API server."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=exclude_none)
