"""Typed views of the children the operator observes: JobSets and Kueue Workloads.

Only what a decision reads is kept, read defensively (another controller writes these statuses).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ladder_operator import labels as lb
from ladder_operator.reconcile.keys import EVAL_HASH_ANNOTATION

# Kueue's Evicted reasons for a Workload whose spec.active is false: the plain ones say someone
# set it (the operator on spec.suspend, or a person); the ones with a cause say Kueue itself
# deactivated it ("DeactivatedDueToRequeuingLimitExceeded"; before Kueue 0.9
# "InactiveWorkloadRequeuingLimitExceeded"), and only a user's decision may undo that.
PLAIN_DEACTIVATION = ("Deactivated", "InactiveWorkload")


class JobState(StrEnum):
    absent = "absent"
    active = "active"
    suspended = "suspended"
    completed = "completed"
    failed = "failed"


def _true_condition(status: dict, ctype: str) -> dict | None:
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype and c.get("status") == "True":
            return c
    return None


@dataclass(frozen=True)
class JobSetView:
    name: str
    state: JobState
    restarts: int = 0
    failure: tuple[str, str] | None = None  # reason and message of its Failed condition
    eval_hash: str | None = None  # the evaluation grid an evaluation JobSet was created for
    width: str | None = None  # its ladder.dev/width label
    recipe_hash: str | None = None  # its ladder.dev/recipe-hash annotation


def jobset_view(name: str, js: dict) -> JobSetView:
    status = js.get("status") or {}
    meta = js.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    failed = _true_condition(status, "Failed")
    if _true_condition(status, "Completed") or status.get("terminalState") == "Completed":
        state = JobState.completed
    elif failed or status.get("terminalState") == "Failed":
        state = JobState.failed
    elif (js.get("spec") or {}).get("suspend"):
        state = JobState.suspended
    else:
        state = JobState.active
    return JobSetView(
        name=name,
        state=state,
        restarts=int(status.get("restarts") or 0),
        failure=(failed.get("reason") or "", failed.get("message") or "") if failed else None,
        eval_hash=annotations.get(EVAL_HASH_ANNOTATION),
        width=(meta.get("labels") or {}).get(lb.WIDTH),
        recipe_hash=annotations.get(lb.RECIPE_HASH),
    )


@dataclass(frozen=True)
class WorkloadView:
    name: str
    active: bool = True
    admitted: bool = False
    deactivated_by_kueue: str | None = None  # why, when Kueue (not the operator) turned it off


def _kueue_deactivation(status: dict) -> str | None:
    target = _true_condition(status, "DeactivationTarget")
    if target is not None:
        return f"{target.get('reason') or 'Deactivated'}: {target.get('message') or ''}".rstrip(": ")
    evicted = _true_condition(status, "Evicted")
    reason = (evicted or {}).get("reason") or ""
    if reason.startswith(PLAIN_DEACTIVATION) and reason not in PLAIN_DEACTIVATION:
        return f"{reason}: {evicted.get('message') or ''}".rstrip(": ")
    return None


def workload_view(wl: dict) -> WorkloadView:
    status = wl.get("status") or {}
    active = (wl.get("spec") or {}).get("active", True) is not False
    return WorkloadView(
        name=(wl.get("metadata") or {}).get("name") or "",
        active=active,
        admitted=bool(status.get("admission")) or _true_condition(status, "Admitted") is not None,
        deactivated_by_kueue=None if active else _kueue_deactivation(status),
    )
