"""What reconcile() is given (Observed) and what it answers (Outcome: actions and the status).

The actions are data: the I/O shell (controller.py) executes them in order and then
server-side-applies Outcome.status, so every decision is tested without an API server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ladder_api.plan import RunConfig
from ladder_kube.resources import JOBSET


@dataclass(frozen=True)
class Create:
    """Create an object; 409 AlreadyExists counts as done (a restart never duplicates)."""

    obj: dict


@dataclass(frozen=True)
class ApplyShared:
    """Server-side apply the per-experiment objects (ConfigMap, RBAC): create or update."""

    objs: tuple[dict, ...]


@dataclass(frozen=True)
class SetSuspend:
    """JobSet spec.suspend (kind 'jobset') or Kueue Workload spec.active (kind 'workload')."""

    kind: str
    name: str
    suspend: bool


@dataclass(frozen=True)
class Delete:
    api_version: str
    plural: str
    name: str


def delete_jobset(name: str) -> Delete:
    return Delete(JOBSET.api_version, JOBSET.plural, name)


@dataclass(frozen=True)
class RecordState:
    """Write the operator-state annotation (before the objects it describes are created)."""

    state: dict


@dataclass(frozen=True)
class PostEvent:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class SetFinalizers:
    finalizers: tuple[str, ...]


@dataclass(frozen=True)
class RemoveAnnotation:
    key: str


@dataclass(frozen=True)
class CleanupCheckpoints:
    """Delete each size's checkpoint prefix (retention: delete); metrics, samples and results
    stay, they are small and they are the study's outcome."""

    uris: tuple[str, ...]


Action = (
    Create
    | ApplyShared
    | SetSuspend
    | Delete
    | RecordState
    | PostEvent
    | SetFinalizers
    | CleanupCheckpoints
    | RemoveAnnotation
)


@dataclass
class Observed:
    """What exists now: this experiment's JobSets by name and, when the Kueue API is served,
    their Workloads keyed by the owning JobSet's name (None: no Kueue); what the API server
    refused to create for this generation of the spec (`rejected`: which object, and why); and,
    for an experiment with spec.data.prepare, whether data.trainUri holds a prepared set's
    manifest (None: not looked, or the storage did not answer)."""

    jobsets: dict[str, dict] = field(default_factory=dict)
    workloads: dict[str, dict] | None = None
    rejected: str | None = None
    data_prepared: bool | None = None


@dataclass
class Outcome:
    actions: list[Action]
    status: dict  # the operator-owned part of .status, wire form
    phase: str
    # The runs whose results of record the controller reads to add the digest (per-size
    # measurements, the summary's results part) to `status`; empty: `status` already holds the
    # digest it should keep (an invalid spec keeps what is known).
    runs: tuple[RunConfig, ...] = ()
