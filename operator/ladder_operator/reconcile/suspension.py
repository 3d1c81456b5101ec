"""Step 7: suspend or resume what runs.

With Kueue the operator deactivates the Workloads (Kueue gives the quota back and suspends the
JobSets) and re-activates them on resume (Kueue unsuspends on admission); without Kueue it
suspends the JobSets itself. A Workload that Kueue deactivated on its own (requeuing limit,
admission check) stays deactivated: re-activating it would undo Kueue's decision in a loop. The
size says why, and the retry annotation re-activates it (retry.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from ladder_operator.reconcile.actions import SetSuspend
from ladder_operator.reconcile.children import JobSetView, JobState, WorkloadView


def suspension_actions(
    jobsets: Mapping[str, JobSetView], workloads: Mapping[str, WorkloadView] | None, suspend: bool
) -> list[SetSuspend]:
    actions = []
    for name, js in sorted(jobsets.items()):
        if js.state in (JobState.completed, JobState.failed):
            continue
        wl = (workloads or {}).get(name)
        if suspend:
            if js.state is not JobState.suspended:
                actions.append(SetSuspend("jobset", name, True))
            if wl is not None and wl.active:
                actions.append(SetSuspend("workload", wl.name, True))
        elif wl is not None and not wl.active and not wl.deactivated_by_kueue:
            actions.append(SetSuspend("workload", wl.name, False))
        elif workloads is None and js.state is JobState.suspended:
            actions.append(SetSuspend("jobset", name, False))
    return actions
