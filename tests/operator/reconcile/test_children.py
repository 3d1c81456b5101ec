"""Reading JobSets and Kueue Workloads: which state, and who deactivated a Workload."""

from __future__ import annotations

import pytest

from ladder_operator.reconcile.children import JobState, jobset_view, workload_view


def js(status=None, suspend=False, **meta):
    return {"metadata": meta, "spec": {"suspend": suspend}, "status": status or {}}


@pytest.mark.parametrize(
    ("obj", "state"),
    [
        (js({"conditions": [{"type": "Completed", "status": "True"}]}), JobState.completed),
        (js({"terminalState": "Completed"}), JobState.completed),
        (js({"terminalState": "Failed"}), JobState.failed),
        (js({"conditions": [{"type": "Completed", "status": "False"}]}), JobState.active),
        (js(suspend=True), JobState.suspended),
        (js(), JobState.active),
    ],
)
def test_jobset_state(obj, state):
    assert jobset_view("x", obj).state is state


def test_jobset_view_keeps_what_decisions_read():
    failed = {"conditions": [{"type": "Failed", "status": "True", "reason": "FailedJobs", "message": "boom"}],
              "restarts": 3}
    annotations = {"ladder.dev/recipe-hash": "r1", "ladder.dev/evaluation-hash": "e1"}
    view = jobset_view("e-c32", js(failed, labels={"ladder.dev/width": "32"}, annotations=annotations))
    assert (view.state, view.restarts, view.failure) == (JobState.failed, 3, ("FailedJobs", "boom"))
    assert (view.width, view.recipe_hash, view.eval_hash) == ("32", "r1", "e1")


def wl(active=True, *conditions, admission=None):
    return {"metadata": {"name": "w"}, "spec": {"active": active},
            "status": {"conditions": list(conditions), **({"admission": admission} if admission else {})}}


def evicted(reason, message=""):
    return {"type": "Evicted", "status": "True", "reason": reason, "message": message}


def test_admission_is_read_from_either_field():
    assert workload_view(wl(admission={"clusterQueue": "q"})).admitted
    assert workload_view(wl(True, {"type": "Admitted", "status": "True"})).admitted
    assert not workload_view(wl()).admitted


@pytest.mark.parametrize("reason", ["Deactivated", "InactiveWorkload"])
def test_a_plain_deactivation_is_not_kueues_own(reason):
    """What Kueue writes after someone (the operator on spec.suspend) set spec.active false."""
    view = workload_view(wl(False, evicted(reason)))
    assert not view.active and view.deactivated_by_kueue is None


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        (evicted("DeactivatedDueToRequeuingLimitExceeded", "The workload is deactivated"),
         "DeactivatedDueToRequeuingLimitExceeded: The workload is deactivated"),
        (evicted("InactiveWorkloadRequeuingLimitExceeded"), "InactiveWorkloadRequeuingLimitExceeded"),
        ({"type": "DeactivationTarget", "status": "True", "reason": "RequeuingLimitExceeded",
          "message": "exceeding the maximum number of re-queuing retries"},
         "RequeuingLimitExceeded: exceeding the maximum number of re-queuing retries"),
    ],
)
def test_kueues_own_deactivation_says_why(condition, why):
    view = workload_view(wl(False, condition))
    assert not view.active and view.deactivated_by_kueue == why
    assert workload_view(wl(True, condition)).deactivated_by_kueue is None, "re-activated since"
