"""The per-size state machine: each case states what is known and asserts the size's phase, its
message, and what it asks for (a slot, an evaluation JobSet, what the record should say)."""

from __future__ import annotations

from ladder_api.status import SizePhase, SizeStatus
from ladder_operator.reconcile.children import JobSetView, JobState, WorkloadView
from ladder_operator.reconcile.sizes import Setting, SizeFacts, decide_size
from ladder_operator.reconcile.state import SizeRecord

P = SizePhase
K = Setting("exp", kueue=True, queue="tpu")
NO_KUEUE = Setting("exp")
GRID = "grid-2"


def facts(training=None, evaluation=None, *, previous=None, record=SizeRecord(), workload=None, eval_wl=None):
    prev = SizeStatus(width=32, **previous) if previous else None
    train = JobSetView("exp-c32", JobState(training), restarts=0) if isinstance(training, str) else training
    ev = JobSetView("exp-c32-eval", JobState(evaluation), eval_hash=GRID) if isinstance(evaluation, str) \
        else evaluation
    return SizeFacts(32, GRID, training=train, evaluation=ev, training_workload=workload,
                     evaluation_workload=eval_wl, previous=prev, record=record)


def phase(d):
    return d.status.phase, d.status.message


def test_a_size_never_started_waits_for_admission():
    d = decide_size(facts(), K)
    assert phase(d) == (P.pending, None) and d.wants_start and not d.holds_slot
    assert (d.status.jobset, d.status.eval_jobset, d.status.restarts) == ("exp-c32", None, 0)


def test_a_recorded_start_whose_jobset_is_missing_is_owed_a_slot_unless_held():
    recorded = SizeRecord(started="r1")
    assert decide_size(facts(record=recorded), K).wants_start
    assert not decide_size(facts(record=recorded), Setting("exp", suspend=True)).wants_start
    assert not decide_size(facts(record=recorded), Setting("exp", refused=True)).wants_start


def test_training_phases_follow_kueue_and_the_jobset():
    admitted = WorkloadView("w", admitted=True)
    assert phase(decide_size(facts("active", workload=admitted), K)) == (P.training, None)
    queued = decide_size(facts("suspended", workload=WorkloadView("w")), K)
    assert phase(queued) == (P.queued, "waiting for Kueue to admit it in queue 'tpu'") and queued.holds_slot
    assert phase(decide_size(facts("suspended"), K))[0] is P.queued, "no Workload yet"
    assert phase(decide_size(facts("active"), NO_KUEUE)) == (P.training, None)
    assert phase(decide_size(facts("suspended"), NO_KUEUE)) == (P.queued, "the JobSet is suspended")
    held = decide_size(facts("active", workload=admitted), Setting("exp", kueue=True, suspend=True))
    assert phase(held) == (P.suspended, "spec.suspend is true") and held.holds_slot


def test_a_workload_kueue_deactivated_shows_why_and_how_to_re_activate_it():
    why = "DeactivatedDueToRequeuingLimitExceeded: The workload is deactivated"
    wl = WorkloadView("jobset-exp-c32", active=False, deactivated_by_kueue=why)
    d = decide_size(facts("suspended", workload=wl), K)
    assert d.status.phase is P.suspended and d.holds_slot, "keeps its slot: maxConcurrent holds"
    assert d.status.message == (
        "Kueue deactivated its Workload jobset-exp-c32 (DeactivatedDueToRequeuingLimitExceeded: The workload "
        "is deactivated); annotate the experiment with ladder.dev/retry-failed=1 to re-activate it"
    )


def test_a_failed_training_names_reason_and_restarts_and_is_recorded():
    js = JobSetView("exp-c32", JobState.failed, restarts=3, failure=("FailedJobs", "boom"))
    d = decide_size(facts(js), K)
    assert phase(d) == (P.failed, "FailedJobs: boom (restarts: 3)") and not d.holds_slot
    assert d.record.trained == "failed" and d.status.restarts == 3
    # The JobSet expired: the record remembers, the last message stays.
    gone = decide_size(facts(previous={"phase": P.failed, "message": "FailedJobs: boom (restarts: 3)"},
                             record=SizeRecord(started="r1", trained="failed")), K)
    assert phase(gone) == (P.failed, "FailedJobs: boom (restarts: 3)") and not gone.wants_start


def test_restarts_survive_a_jobset_that_reports_none():
    d = decide_size(facts("active", previous={"phase": P.training, "restarts": 2}), NO_KUEUE)
    assert d.status.restarts == 2


def test_a_trained_size_creates_its_evaluation_and_records_the_grid():
    d = decide_size(facts("completed"), K)
    assert phase(d) == (P.evaluating, None) and d.create_evaluation and not d.holds_slot
    assert d.status.eval_jobset == "exp-c32-eval"
    assert (d.record.trained, d.record.evaluated, d.record.done) == ("completed", GRID, None)


def test_a_finished_size_is_never_retrained_even_with_jobsets_and_status_gone():
    """What a short-lived invalid edit used to cause: no JobSets (expired), no status entry."""
    record = SizeRecord(started="r1", trained="completed", evaluated=GRID, done=GRID)
    d = decide_size(facts(record=record), K)
    assert phase(d) == (P.succeeded, None)
    assert not (d.wants_start or d.create_evaluation or d.delete_evaluation or d.holds_slot)
    # Trained but not yet evaluated: it evaluates, it does not train again.
    d = decide_size(facts(record=SizeRecord(started="r1", trained="completed")), K)
    assert phase(d) == (P.evaluating, None) and d.create_evaluation and not d.wants_start


def test_a_status_written_before_the_record_still_counts():
    record = SizeRecord(started="r1", evaluated=GRID)
    d = decide_size(facts(previous={"phase": P.succeeded}, record=record), K)
    assert phase(d) == (P.succeeded, None) and d.record == SizeRecord("r1", "completed", GRID, GRID)


def test_evaluation_outcomes():
    done = decide_size(facts("completed", "completed", record=SizeRecord(evaluated=GRID)), K)
    assert phase(done) == (P.succeeded, None) and done.record.done == GRID
    failed_js = JobSetView("exp-c32-eval", JobState.failed, failure=("FailedJobs", "oom"), eval_hash=GRID)
    failed = decide_size(facts("completed", failed_js), K)
    assert phase(failed) == (P.failed, "evaluation failed: FailedJobs: oom")
    running = decide_size(facts("completed", "active"), K)
    assert phase(running) == (P.evaluating, None) and not running.create_evaluation
    held = decide_size(facts("completed", "active"), Setting("exp", kueue=True, suspend=True))
    assert phase(held) == (P.suspended, "spec.suspend is true")


def test_a_changed_grid_evaluates_again():
    old = JobSetView("exp-c32-eval", JobState.completed, eval_hash="grid-1")
    d = decide_size(facts("completed", old, record=SizeRecord(evaluated="grid-1", done="grid-1")), K)
    assert phase(d) == (P.evaluating, "evaluation grid changed; re-evaluating") and d.delete_evaluation
    # Its JobSets expired: the evaluation is created for the new grid.
    record = SizeRecord(trained="completed", done="grid-1")
    d = decide_size(facts(previous={"phase": P.succeeded}, record=record), K)
    assert phase(d) == (P.evaluating, None) and d.create_evaluation and d.record.evaluated == GRID


def test_nothing_new_is_created_while_held():
    refused = decide_size(facts("completed"), Setting("exp", refused=True))
    assert phase(refused) == (P.evaluating, "waiting: the spec edit was refused")
    assert not refused.create_evaluation
    suspended = decide_size(facts("completed"), Setting("exp", suspend=True))
    assert phase(suspended) == (P.suspended, "spec.suspend is true") and not suspended.create_evaluation
    old = JobSetView("exp-c32-eval", JobState.completed, eval_hash="grid-1")
    kept = decide_size(facts("completed", old), Setting("exp", refused=True))
    assert not kept.delete_evaluation, "a refused spec re-runs nothing"
