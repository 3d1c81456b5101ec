"""Step 5a: the data preparation (spec.data.prepare) that runs before any size trains.

One JobSet (render.prepare_jobset) of indexed workers makes data.trainUri; training starts only
once it has succeeded. Idempotent and restart-safe at both levels:
- the operator creates the JobSet at most once (a fixed name; 409 counts as done) and records the
  outcome in its state annotation, so a restarted operator neither runs a finished preparation
  again nor forgets a failed one when the JobSet has expired;
- data.trainUri holding a manifest means the data is prepared (the controller looks before it
  calls reconcile): nothing is run, whatever made it;
- the workers commit whole parts and skip committed ones (ladder_prepare.text_image), so pods
  restarted mid-preparation add no duplicate and leave no gap.
A failed preparation fails the experiment with the JobSet's reason; `ladder.dev/retry-failed`
deletes the failed JobSet and runs it again (after the user fixed the source, say).
"""

from __future__ import annotations

from dataclasses import dataclass

from ladder_api.conditions import Preparation
from ladder_api.spec import ScalingExperiment
from ladder_operator import names
from ladder_operator.reconcile.children import JobSetView, JobState
from ladder_operator.reconcile.experiment import ExperimentObject
from ladder_operator.reconcile.facts import World
from ladder_operator.reconcile.state import OperatorState

COMPLETED, FAILED = JobState.completed.value, JobState.failed.value
FAILED_PREFIX = "data preparation failed: "


@dataclass(frozen=True)
class PrepareFacts:
    wanted: bool  # spec.data.prepare is set
    name: str  # the prepare JobSet's name
    workers: int = 1
    jobset: JobSetView | None = None
    manifest: bool | None = None  # data.trainUri holds a manifest (None: not looked or unknown)
    record: str | None = None  # the state annotation's "prepare": completed or failed
    previous_message: str = ""  # the experiment's last status message
    retry: bool = False  # ladder.dev/retry-failed is being honoured on this pass


@dataclass(frozen=True)
class PrepareDecision:
    ready: bool  # sizes may start training
    record: str | None  # what the state annotation should say
    preparation: Preparation | None = None  # for the status: still preparing, or failed
    create: bool = False
    delete: bool = False  # the failed JobSet, on a retry


def prepare_facts(
    obj: ExperimentObject, exp: ScalingExperiment, world: World, state: OperatorState,
    manifest: bool | None, retry: bool,
) -> PrepareFacts:
    prep = exp.spec.data.prepare
    name = names.prepare_jobset(obj.name)
    return PrepareFacts(
        wanted=prep is not None,
        name=name,
        workers=prep.workers if prep else 1,
        jobset=world.jobsets.get(name),
        manifest=manifest,
        record=state.prepare,
        previous_message=obj.status.message or "",
        retry=retry,
    )


def _failure(f: PrepareFacts) -> str:
    if f.jobset is not None and f.jobset.failure:
        reason, detail = f.jobset.failure
        return f"{reason or 'JobSetFailed'}: {detail}".rstrip(": ") + f" (JobSet {f.name})"
    if f.previous_message.startswith(FAILED_PREFIX):
        return f.previous_message.removeprefix(FAILED_PREFIX)
    return f"the prepare JobSet {f.name} failed"


def decide_prepare(f: PrepareFacts, *, held: bool) -> PrepareDecision:
    """`held`: nothing new may start (spec.suspend, or a refused edit)."""
    if not f.wanted:
        return PrepareDecision(ready=True, record=f.record)
    state = f.jobset.state if f.jobset is not None else JobState.absent
    if f.manifest or f.record == COMPLETED or state is JobState.completed:
        return PrepareDecision(ready=True, record=COMPLETED)
    failed = state is JobState.failed or (f.jobset is None and f.record == FAILED)
    if failed and not f.retry:
        return PrepareDecision(False, FAILED, Preparation(failed=True, message=_failure(f)))
    running = f"preparing data: JobSet {f.name}, {f.workers} worker{'s' if f.workers > 1 else ''}"
    if failed:  # retried: the failed JobSet goes, a new one comes on a later pass
        return PrepareDecision(False, None, Preparation(False, running), delete=f.jobset is not None,
                               create=f.jobset is None and not held)
    if state is JobState.absent:
        return PrepareDecision(False, None, Preparation(False, running), create=not held)
    return PrepareDecision(False, f.record, Preparation(False, running))
