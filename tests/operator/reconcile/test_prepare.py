"""The data preparation step: when the prepare JobSet is created, when training may start, and
what a failure, a restart, an expired JobSet or a retry turn into."""

from __future__ import annotations

from ladder_operator.reconcile.children import JobSetView, JobState
from ladder_operator.reconcile.prepare import PrepareFacts, decide_prepare

NAME = "exp-prepare"


def facts(**kw) -> PrepareFacts:
    return PrepareFacts(**{"wanted": True, "name": NAME, "workers": 4, **kw})


def test_without_the_section_training_is_never_held():
    d = decide_prepare(PrepareFacts(wanted=False, name=NAME), held=False)
    assert d.ready and not d.create and d.preparation is None and d.record is None


def test_first_pass_creates_the_jobset_and_holds_training():
    d = decide_prepare(facts(), held=False)
    assert (d.ready, d.create, d.delete) == (False, True, False)
    assert d.preparation.message == "preparing data: JobSet exp-prepare, 4 workers"
    assert not d.preparation.failed and d.record is None
    held = decide_prepare(facts(), held=True)  # spec.suspend or a refused edit: nothing new
    assert not held.create and not held.ready


def test_a_running_jobset_is_waited_for_never_created_again():
    for state in (JobState.active, JobState.suspended):
        d = decide_prepare(facts(jobset=JobSetView(NAME, state)), held=False)
        assert not d.ready and not d.create and not d.preparation.failed


def test_done_by_the_manifest_the_jobset_or_the_record():
    """A manifest already there (prepared before, or by hand) runs nothing; a completed JobSet
    is recorded, so its expiry (ttlSecondsAfterFinished) does not run it again."""
    for done in (facts(manifest=True), facts(jobset=JobSetView(NAME, JobState.completed)),
                 facts(record="completed", manifest=False)):
        d = decide_prepare(done, held=False)
        assert d.ready and not d.create and d.preparation is None and d.record == "completed"
    d = decide_prepare(facts(manifest=True, jobset=JobSetView(NAME, JobState.failed)), held=False)
    assert d.ready  # the data is there: an old failure no longer matters


def test_a_failure_names_the_reason_and_outlives_the_jobset():
    failed = JobSetView(NAME, JobState.failed, failure=("FailedJobs", "worker 2: exit code 2"))
    d = decide_prepare(facts(jobset=failed), held=False)
    assert not d.ready and not d.create and d.record == "failed"
    assert d.preparation.failed
    assert d.preparation.message == "FailedJobs: worker 2: exit code 2 (JobSet exp-prepare)"
    said = "data preparation failed: FailedJobs: worker 2: exit code 2 (JobSet exp-prepare)"
    expired = facts(record="failed", previous_message=said)
    d = decide_prepare(expired, held=False)
    assert not d.create and d.preparation.failed
    assert d.preparation.message == "FailedJobs: worker 2: exit code 2 (JobSet exp-prepare)"


def test_a_retry_deletes_the_failed_jobset_then_creates_a_new_one():
    failed = JobSetView(NAME, JobState.failed, failure=("FailedJobs", "x"))
    d = decide_prepare(facts(jobset=failed, record="failed", retry=True), held=False)
    assert (d.delete, d.create, d.record, d.preparation.failed) == (True, False, None, False)
    d = decide_prepare(facts(record=d.record), held=False)
    assert d.create
    expired = decide_prepare(facts(record="failed", retry=True), held=False)
    assert expired.create and not expired.delete
