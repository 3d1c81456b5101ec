"""Step 4: retry on request (`kubectl annotate sx NAME ladder.dev/retry-failed=1`).

A failed training JobSet is deleted and the size queues again behind maxConcurrent; a failed
evaluation is run again without retraining (the evaluator skips results already recorded); a
Workload that Kueue deactivated (its requeuing limit, an admission check) is re-activated. The
operator never does any of these on its own: each is a decision about spending TPU time again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ladder_api.status import SizePhase, SizeStatus
from ladder_operator.reconcile.actions import Action, PostEvent, SetSuspend, delete_jobset
from ladder_operator.reconcile.children import JobState, WorkloadView
from ladder_operator.reconcile.experiment import ExperimentObject
from ladder_operator.reconcile.keys import RETRY_ANNOTATION
from ladder_operator.reconcile.sizes import EVAL_FAILED, SizeFacts
from ladder_operator.reconcile.state import SizeRecord


@dataclass(frozen=True)
class Retried:
    facts: SizeFacts  # what is known once the actions are done
    actions: tuple[Action, ...]
    event: PostEvent


def retry_requested(exp: ExperimentObject, refused: bool, suspend: bool) -> bool:
    """A request waits (the annotation stays) while the spec is refused or suspended."""
    return RETRY_ANNOTATION in exp.annotations and not refused and not suspend


def _reactivate(f: SizeFacts) -> Retried | None:
    actions, facts = [], f
    for attr in ("training_workload", "evaluation_workload"):
        wl: WorkloadView | None = getattr(f, attr)
        if wl is not None and wl.deactivated_by_kueue:
            actions.append(SetSuspend("workload", wl.name, False))
            facts = replace(facts, **{attr: WorkloadView(wl.name)})
    if not actions:
        return None
    text = f"size c{f.width}: re-activating its Kueue Workload"
    return Retried(facts, tuple(actions), PostEvent("Normal", "SizeRetried", text))


def _evaluation_failed(f: SizeFacts, training: JobState, evaluation: JobState) -> bool:
    if evaluation is JobState.failed:
        return True
    return training is not JobState.failed and (
        f.record.trained == JobState.completed or f.previous_message.startswith(EVAL_FAILED)
    )


def retry_size(f: SizeFacts) -> Retried | None:
    """The size as it will be after its retry, or None when there is nothing to retry."""
    if reactivated := _reactivate(f):
        return reactivated
    training = f.training.state if f.training else JobState.absent
    evaluation = f.evaluation.state if f.evaluation else JobState.absent
    if f.previous_phase is not SizePhase.failed and JobState.failed not in (training, evaluation):
        return None
    event = PostEvent("Normal", "SizeRetried", f"size c{f.width}: retrying after a failure")
    if _evaluation_failed(f, training, evaluation):
        actions = (delete_jobset(f.evaluation.name),) if f.evaluation else ()
        record = replace(f.record, trained=JobState.completed.value, evaluated=None, done=None)
        facts = replace(f, evaluation=None, evaluation_workload=None, record=record,
                        previous=SizeStatus(width=f.width, phase=SizePhase.evaluating))
        return Retried(facts, actions, event)
    actions = (delete_jobset(f.training.name),) if f.training else ()
    facts = replace(f, training=None, training_workload=None, record=SizeRecord(),
                    previous=SizeStatus(width=f.width, phase=SizePhase.pending))
    return Retried(facts, actions, event)
