"""reconcile(experiment, observed) -> Outcome: what the operator should do next, and the status.

Pure and level-based: the same inputs always give the same answer, whatever happened before, so a
restarted (or SIGKILLed) operator converges to the same end state. What it must remember beyond
what the cluster shows lives in the cluster too (state.py: the `ladder.dev/operator-state`
annotation, with the JobSets' own annotations standing in for it).

The I/O shell (controller.py) executes the actions in order and then server-side-applies
`Outcome.status` with the field manager `ladder-operator`. That status holds only the fields the
operator owns; pods own results and training progress, and server-side apply keeps both.

One module per step, driven by driver.py: validate, finalizer (deletion), refusal, retry, prepare
(spec.data.prepare's JobSet before any training), sizes (the per-size state machine), admission
(maxConcurrent), suspension, status (ladder_api.conditions builds the phase and conditions, as
for `ladder run`).
"""

from ladder_operator.reconcile.actions import (
    Action,
    ApplyShared,
    CleanupCheckpoints,
    Create,
    Delete,
    Observed,
    Outcome,
    PostEvent,
    RecordState,
    RemoveAnnotation,
    SetFinalizers,
    SetSuspend,
)
from ladder_operator.reconcile.driver import reconcile
from ladder_operator.reconcile.keys import (
    EVAL_HASH_ANNOTATION,
    FIELD_MANAGER,
    FINALIZER,
    RETRY_ANNOTATION,
    STATE_ANNOTATION,
    event_name,
    is_ours,
)

__all__ = [
    "EVAL_HASH_ANNOTATION",
    "FIELD_MANAGER",
    "FINALIZER",
    "RETRY_ANNOTATION",
    "STATE_ANNOTATION",
    "Action",
    "ApplyShared",
    "CleanupCheckpoints",
    "Create",
    "Delete",
    "Observed",
    "Outcome",
    "PostEvent",
    "RecordState",
    "RemoveAnnotation",
    "SetFinalizers",
    "SetSuspend",
    "event_name",
    "is_ours",
    "reconcile",
]
