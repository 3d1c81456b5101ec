"""Step 2: deletion and the checkpoint finalizer.

Children go with the experiment by owner references; the only thing the operator does on
deletion is what owner references cannot: delete the checkpoints when the spec asks for it
(retention: delete), of every size that was started, including widths since removed from the
spec. The finalizer is held only while retention is delete.
"""

from __future__ import annotations

from ladder_api.artifacts import size_paths
from ladder_api.plan import Plan
from ladder_api.spec import CheckpointRetention, ScalingExperiment
from ladder_api.storage import join
from ladder_operator.reconcile.actions import Action, CleanupCheckpoints, Outcome, SetFinalizers
from ladder_operator.reconcile.experiment import ExperimentObject
from ladder_operator.reconcile.keys import FINALIZER
from ladder_operator.reconcile.state import OperatorState
from ladder_operator.reconcile.validate import without_finalizer


def checkpoint_uris(exp: ScalingExperiment, plan: Plan, state: OperatorState) -> tuple[str, ...]:
    spec = exp.spec
    base = join(spec.storage.output_uri, exp.metadata.name)
    widths = sorted({*spec.ladder.widths, *state.started()})
    return tuple(
        plan.run(w).paths.checkpoints if w in spec.ladder.widths else size_paths(base, w).checkpoints
        for w in widths
    )


def deletion_outcome(
    obj: ExperimentObject, exp: ScalingExperiment, plan: Plan, state: OperatorState
) -> Outcome:
    actions: list[Action] = []
    if FINALIZER in obj.finalizers:
        if exp.spec.training.checkpoint.retention is CheckpointRetention.delete:
            actions.append(CleanupCheckpoints(checkpoint_uris(exp, plan, state)))
        actions.append(without_finalizer(obj.finalizers))
    return Outcome(actions, {}, obj.phase or "Pending")


def finalizer_actions(obj: ExperimentObject, exp: ScalingExperiment) -> list[Action]:
    wanted = exp.spec.training.checkpoint.retention is CheckpointRetention.delete
    if wanted and FINALIZER not in obj.finalizers:
        return [SetFinalizers((*obj.finalizers, FINALIZER))]
    if not wanted and FINALIZER in obj.finalizers:
        return [without_finalizer(obj.finalizers)]
    return []
