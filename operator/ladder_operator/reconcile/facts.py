"""What is known about each size, gathered from the observed children, the record and the last
status: the typed input of the per-size steps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ladder_api.grid import evaluation_hash
from ladder_api.plan import Plan
from ladder_operator import names
from ladder_operator.reconcile.actions import Observed
from ladder_operator.reconcile.children import JobSetView, WorkloadView, jobset_view, workload_view
from ladder_operator.reconcile.experiment import ExperimentObject
from ladder_operator.reconcile.sizes import SizeFacts
from ladder_operator.reconcile.state import OperatorState


@dataclass(frozen=True)
class World:
    """Observed, typed: JobSets by name and (None without Kueue) Workloads by their JobSet."""

    jobsets: Mapping[str, JobSetView]
    workloads: Mapping[str, WorkloadView] | None


def observe(observed: Observed) -> World:
    jobsets = {name: jobset_view(name, js) for name, js in observed.jobsets.items()}
    if observed.workloads is None:
        return World(jobsets, None)
    return World(jobsets, {name: workload_view(wl) for name, wl in observed.workloads.items()})


def size_facts(
    exp: ExperimentObject, widths: list[int], plan: Plan, world: World, state: OperatorState
) -> list[SizeFacts]:
    """One SizeFacts per width (given in the spec's start order)."""
    previous = {s.width: s for s in exp.status.sizes}
    workloads = world.workloads or {}
    out = []
    for width in widths:
        train, evaluate = names.training_jobset(exp.name, width), names.evaluation_jobset(exp.name, width)
        out.append(SizeFacts(
            width=width,
            eval_hash=evaluation_hash(plan.run(width).evaluation),
            training=world.jobsets.get(train),
            evaluation=world.jobsets.get(evaluate),
            training_workload=workloads.get(train),
            evaluation_workload=workloads.get(evaluate),
            previous=previous.get(width),
            record=state.size(width),
        ))
    return out

