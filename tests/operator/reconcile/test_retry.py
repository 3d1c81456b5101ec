"""Retry on request: what each kind of stuck size turns into, and what the operator does."""

from __future__ import annotations

from ladder_api.status import SizePhase, SizeStatus
from ladder_operator.reconcile.actions import Delete, SetSuspend
from ladder_operator.reconcile.children import JobSetView, JobState, WorkloadView
from ladder_operator.reconcile.experiment import ExperimentObject
from ladder_operator.reconcile.retry import retry_requested, retry_size
from ladder_operator.reconcile.sizes import Setting, SizeFacts, decide_size
from ladder_operator.reconcile.state import SizeRecord

K = Setting("exp", kueue=True, queue="tpu")
GRID = "g"


def test_a_request_waits_while_the_spec_is_refused_or_suspended():
    asked = ExperimentObject("exp", annotations={"ladder.dev/retry-failed": "1"})
    assert retry_requested(asked, refused=False, suspend=False)
    assert not retry_requested(asked, refused=True, suspend=False)
    assert not retry_requested(asked, refused=False, suspend=True)
    assert not retry_requested(ExperimentObject("exp"), refused=False, suspend=False)


def test_nothing_to_retry():
    healthy = SizeFacts(32, GRID, training=JobSetView("exp-c32", JobState.active))
    assert retry_size(healthy) is None


def test_a_failed_training_goes_and_the_size_queues_again():
    failed = SizeFacts(32, GRID, training=JobSetView("exp-c32", JobState.failed, restarts=3),
                       previous=SizeStatus(width=32, phase=SizePhase.failed, restarts=3, message="boom"),
                       record=SizeRecord(started="r1", trained="failed"))
    r = retry_size(failed)
    assert r.actions == (Delete("jobset.x-k8s.io/v1alpha2", "jobsets", "exp-c32"),)
    assert (r.event.reason, r.event.message) == ("SizeRetried", "size c32: retrying after a failure")
    d = decide_size(r.facts, K)
    assert (d.status.phase, d.status.restarts, d.wants_start) == (SizePhase.pending, 0, True)
    assert d.record == SizeRecord(), "started anew: a new recipe hash is recorded when it starts"


def test_a_failed_evaluation_runs_again_without_retraining():
    """The training JobSet expired meanwhile; the record says training completed."""
    failed = SizeFacts(32, GRID, evaluation=JobSetView("exp-c32-eval", JobState.failed, eval_hash=GRID),
                       previous=SizeStatus(width=32, phase=SizePhase.failed, message="evaluation failed: x"),
                       record=SizeRecord(started="r1", trained="completed", evaluated=GRID))
    r = retry_size(failed)
    assert r.actions == (Delete("jobset.x-k8s.io/v1alpha2", "jobsets", "exp-c32-eval"),)
    d = decide_size(r.facts, K)
    assert d.status.phase is SizePhase.evaluating and d.create_evaluation and not d.wants_start
    # Known only from the status (an operator before the record): the same.
    previous = SizeStatus(width=32, phase=SizePhase.failed, message="evaluation failed: x")
    old = SizeFacts(32, GRID, previous=previous, record=SizeRecord(started="r1"))
    d = decide_size(retry_size(old).facts, K)
    assert d.create_evaluation and not d.wants_start


def test_a_workload_kueue_deactivated_is_re_activated():
    why = "DeactivatedDueToRequeuingLimitExceeded"
    wl = WorkloadView("jobset-exp-c32", active=False, deactivated_by_kueue=why)
    stuck = SizeFacts(32, GRID, training=JobSetView("exp-c32", JobState.suspended), training_workload=wl,
                      previous=SizeStatus(width=32, phase=SizePhase.suspended))
    r = retry_size(stuck)
    assert r.actions == (SetSuspend("workload", "jobset-exp-c32", False),)
    assert r.event.message == "size c32: re-activating its Kueue Workload"
    d = decide_size(r.facts, K)
    assert (d.status.phase, d.holds_slot) == (SizePhase.queued, True), "waits for Kueue to admit it again"
