"""The experiment object as the steps read it: its metadata and its current status, typed.

The status is written by several writers (the operator, trainer and evaluator pods, people with
kubectl): it is read entry by entry, and an entry that does not validate is skipped rather than
failing the whole reconcile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from ladder_api.status import (
    Condition,
    CostEstimate,
    ExperimentPhase,
    ScalingExperimentStatus,
    SizeStatus,
    Summary,
)


@dataclass(frozen=True)
class ExperimentObject:
    name: str
    uid: str = ""
    generation: int | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    deleting: bool = False
    status: ScalingExperimentStatus = field(default_factory=ScalingExperimentStatus)
    has_status: bool = False  # whether any status was written yet (a new experiment has none)

    @property
    def phase(self) -> str | None:
        """The phase written last, None before the first status."""
        return self.status.phase.value if self.has_status else None


def _entries(model: type[BaseModel], items) -> list:
    out = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(model.model_validate(item))
        except ValidationError:
            continue
    return out


def _field(model: type[BaseModel], value, default):
    try:
        return model.model_validate(value) if value is not None else default
    except ValidationError:
        return default


def lenient_status(wire: dict) -> ScalingExperimentStatus:
    """The status, each list entry validated on its own. Fields this version does not know are
    ignored: `results`, which operators before the digest kept in the status (the results of
    record are in storage now; ladder_operator.results copies such old entries there once)."""
    try:
        phase = ExperimentPhase(wire.get("phase") or ExperimentPhase.pending)
    except ValueError:
        phase = ExperimentPhase.pending
    images = wire.get("images")
    return ScalingExperimentStatus(
        phase=phase,
        message=wire.get("message") if isinstance(wire.get("message"), str) else None,
        spec_hash=wire.get("specHash") if isinstance(wire.get("specHash"), str) else None,
        code_version=wire.get("codeVersion") if isinstance(wire.get("codeVersion"), str) else None,
        storage_root=wire.get("storageRoot") if isinstance(wire.get("storageRoot"), str) else None,
        images={k: v for k, v in images.items() if isinstance(v, str)} if isinstance(images, dict) else {},
        conditions=_entries(Condition, wire.get("conditions")),
        sizes=_entries(SizeStatus, wire.get("sizes")),
        summary=_field(Summary, wire.get("summary"), Summary()),
        cost=_field(CostEstimate, wire.get("cost"), None),
    )


def read_experiment(raw: dict) -> ExperimentObject:
    meta = raw.get("metadata") or {}
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    return ExperimentObject(
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        generation=meta.get("generation"),
        annotations=dict(meta.get("annotations") or {}),
        finalizers=tuple(meta.get("finalizers") or ()),
        deleting=bool(meta.get("deletionTimestamp")),
        status=lenient_status(status),
        has_status=bool(status.get("phase")),
    )
