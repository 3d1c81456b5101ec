"""Suspend and resume, with and without Kueue; Kueue's own deactivations are respected."""

from __future__ import annotations

from ladder_operator.reconcile.actions import SetSuspend
from ladder_operator.reconcile.children import JobSetView, JobState, WorkloadView
from ladder_operator.reconcile.suspension import suspension_actions

JS = {
    "e-c32": JobSetView("e-c32", JobState.active),
    "e-c64": JobSetView("e-c64", JobState.suspended),
    "e-c96": JobSetView("e-c96", JobState.completed),
}


def test_suspend_suspends_running_jobsets_and_deactivates_their_workloads():
    workloads = {"e-c32": WorkloadView("w32"), "e-c64": WorkloadView("w64", active=False),
                 "e-c96": WorkloadView("w96")}
    assert suspension_actions(JS, workloads, suspend=True) == [
        SetSuspend("jobset", "e-c32", True),
        SetSuspend("workload", "w32", True),
    ]
    assert suspension_actions(JS, None, suspend=True) == [SetSuspend("jobset", "e-c32", True)]


def test_resume_re_activates_only_what_kueue_did_not_deactivate_itself():
    workloads = {
        "e-c32": WorkloadView("w32", active=False),  # the operator's (spec.suspend)
        "e-c64": WorkloadView("w64", active=False, deactivated_by_kueue="DeactivatedDueToRequeuingLimit"),
    }
    assert suspension_actions(JS, workloads, suspend=False) == [SetSuspend("workload", "w32", False)]


def test_without_kueue_the_operator_unsuspends_the_jobsets():
    assert suspension_actions(JS, None, suspend=False) == [SetSuspend("jobset", "e-c64", False)]
    assert suspension_actions(JS, {}, suspend=False) == [], "with Kueue, admission unsuspends"
