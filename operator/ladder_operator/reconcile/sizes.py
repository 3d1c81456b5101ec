"""Step 5: each size's phase, from what is known about it (SizeFacts) to a decision.

A size trains (training JobSet), then evaluates (evaluation JobSet) on the current grid. Its
phase comes from the JobSets while they exist and from the record once they have expired: the
state annotation first (durable, written by the operator), the last status second (operators
before the record wrote only the status). The decision says what the size needs (a training
slot, an evaluation JobSet created or deleted) and what the record should now say; admission
(admission.py) decides which sizes that want to start get a slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ladder_api.status import SizePhase, SizeStatus
from ladder_operator import names
from ladder_operator.reconcile.children import JobSetView, JobState, WorkloadView
from ladder_operator.reconcile.keys import RETRY_ANNOTATION
from ladder_operator.reconcile.state import SizeRecord

SUSPENDED_BY_SPEC = "spec.suspend is true"
REEVALUATING = "evaluation grid changed; re-evaluating"
EVAL_FAILED = "evaluation failed"
TRAINED = (SizePhase.evaluating, SizePhase.succeeded)  # phases that say training completed


@dataclass(frozen=True)
class SizeFacts:
    """Everything known about one size."""

    width: int
    eval_hash: str  # the current evaluation grid's hash for this size
    training: JobSetView | None = None
    evaluation: JobSetView | None = None
    training_workload: WorkloadView | None = None
    evaluation_workload: WorkloadView | None = None
    previous: SizeStatus | None = None  # the size's entry in the last status
    record: SizeRecord = field(default_factory=SizeRecord)

    @property
    def previous_phase(self) -> SizePhase:
        return self.previous.phase if self.previous else SizePhase.pending

    @property
    def previous_message(self) -> str:
        return (self.previous.message if self.previous else None) or ""


@dataclass(frozen=True)
class Setting:
    """What every size's decision depends on besides its own facts."""

    experiment: str
    kueue: bool = False
    queue: str = ""
    suspend: bool = False
    refused: bool = False


@dataclass(frozen=True)
class SizeDecision:
    status: SizeStatus  # the operator's fields of the size's status entry
    record: SizeRecord  # what the state annotation should say about the size
    holds_slot: bool = False  # its training counts against maxConcurrent
    wants_start: bool = False  # its training JobSet should be created when a slot is free
    create_evaluation: bool = False
    delete_evaluation: bool = False

    @property
    def width(self) -> int:
        return self.status.width


def training_state(f: SizeFacts) -> JobState:
    """The training JobSet's state, or what the record (then the status) remembers of it."""
    if f.training is not None:
        return f.training.state
    if f.record.trained == JobState.completed or f.previous_phase in TRAINED:
        return JobState.completed
    if f.record.trained == JobState.failed or (f.previous_phase is SizePhase.failed and f.record.started):
        return JobState.failed
    return JobState.absent


def decide_size(f: SizeFacts, s: Setting) -> SizeDecision:
    restarts = (f.training.restarts if f.training else 0) or (f.previous.restarts if f.previous else 0)
    base = SizeStatus(width=f.width, jobset=names.training_jobset(s.experiment, f.width), restarts=restarts)
    state = training_state(f)
    if state is JobState.absent:
        # Never started: admission decides. Recorded but absent (a crash between recording and
        # creating, or a JobSet deleted by hand): it is owed its slot unless the spec holds it.
        owed = not f.record.started or not (s.refused or s.suspend)
        return SizeDecision(base, f.record, wants_start=owed)
    if state is JobState.failed:
        return _training_failed(f, base)
    if state is JobState.completed:
        eval_name = names.evaluation_jobset(s.experiment, f.width)
        return _evaluation(f, s, base.model_copy(update={"eval_jobset": eval_name}))
    return SizeDecision(_training_phase(f, s, base, state), f.record, holds_slot=True)


def _training_failed(f: SizeFacts, base: SizeStatus) -> SizeDecision:
    record = replace(f.record, trained=JobState.failed.value)
    if f.training is None and f.previous_message:
        message = f.previous_message
    else:
        reason, detail = (f.training.failure if f.training else None) or ("", "")
        detail = detail or f.previous_message or "the training JobSet failed"
        message = f"{reason or 'JobSetFailed'}: {detail} (restarts: {base.restarts})"
    return SizeDecision(base.model_copy(update={"phase": SizePhase.failed, "message": message}), record)


def deactivated_message(wl: WorkloadView) -> str:
    return (
        f"Kueue deactivated its Workload {wl.name} ({wl.deactivated_by_kueue}); annotate the experiment "
        f"with {RETRY_ANNOTATION}=1 to re-activate it"
    )


def _held(s: Setting, wl: WorkloadView | None) -> tuple[SizePhase, str] | None:
    """Suspended by the spec or, while the spec runs, by Kueue."""
    if s.suspend:
        return SizePhase.suspended, SUSPENDED_BY_SPEC
    if s.kueue and wl is not None and wl.deactivated_by_kueue:
        return SizePhase.suspended, deactivated_message(wl)
    return None


def queued_message(queue: str) -> str:
    return f"waiting for Kueue to admit it in queue {queue!r}"


def _training_phase(f: SizeFacts, s: Setting, base: SizeStatus, state: JobState) -> SizeStatus:
    wl = f.training_workload
    if held := _held(s, wl):
        phase, message = held
    elif s.kueue and not (wl is not None and wl.admitted):
        phase, message = SizePhase.queued, queued_message(s.queue)
    elif state is JobState.suspended:
        phase, message = SizePhase.queued, "the JobSet is suspended"
    else:
        phase, message = SizePhase.training, None
    return base.model_copy(update={"phase": phase, "message": message})


def _evaluation_state(f: SizeFacts) -> JobState:
    if f.evaluation is not None:
        return f.evaluation.state
    r = f.record
    if r.done == f.eval_hash or (f.previous_phase is SizePhase.succeeded and r.evaluated == f.eval_hash):
        return JobState.completed
    if f.previous_phase is SizePhase.failed and f.previous_message.startswith(EVAL_FAILED):
        return JobState.failed if r.evaluated == f.eval_hash else JobState.absent
    return JobState.absent


def _evaluation(f: SizeFacts, s: Setting, base: SizeStatus) -> SizeDecision:
    record = replace(f.record, trained=JobState.completed.value)
    state = _evaluation_state(f)
    ev = f.evaluation

    def out(phase: SizePhase, message: str | None = None, **what) -> SizeDecision:
        return SizeDecision(base.model_copy(update={"phase": phase, "message": message}), record, **what)

    finished = state in (JobState.completed, JobState.failed)
    if ev is not None and finished and ev.eval_hash not in (None, f.eval_hash) and not s.refused:
        return out(SizePhase.evaluating, REEVALUATING, delete_evaluation=True)  # the grid was extended
    if state is JobState.absent:
        if s.suspend:
            return out(SizePhase.suspended, SUSPENDED_BY_SPEC)
        if s.refused:
            return out(SizePhase.evaluating, "waiting: the spec edit was refused")
        record = replace(record, evaluated=f.eval_hash, done=None)
        return out(SizePhase.evaluating, create_evaluation=True)
    if state is JobState.completed:
        if ev is not None and record.evaluated not in (None, f.eval_hash) and not s.refused:
            return out(SizePhase.evaluating, REEVALUATING, delete_evaluation=True)
        record = replace(record, done=f.eval_hash)
        return out(SizePhase.succeeded)
    if state is JobState.failed:
        if ev is None:
            return out(SizePhase.failed, f.previous_message)
        reason, detail = ev.failure or ("", "")
        return out(SizePhase.failed, f"{EVAL_FAILED}: {reason or 'JobSetFailed'}: {detail}".rstrip(": "))
    if held := _held(s, f.evaluation_workload):
        return out(*held)
    return out(SizePhase.evaluating)
