"""Deletion and the checkpoint finalizer."""

from __future__ import annotations

from ladder_api.plan import expand
from ladder_api.spec import ScalingExperiment
from ladder_operator.reconcile.actions import CleanupCheckpoints, SetFinalizers
from ladder_operator.reconcile.experiment import ExperimentObject
from ladder_operator.reconcile.finalizer import deletion_outcome, finalizer_actions
from ladder_operator.reconcile.state import OperatorState, SizeRecord
from tests.operator.test_reconcile import experiment

F = "ladder.dev/checkpoint-cleanup"


def exp(retention: str) -> ScalingExperiment:
    return ScalingExperiment.model_validate(experiment(training__checkpoint__retention=retention))


def test_the_finalizer_is_held_only_while_retention_is_delete():
    assert finalizer_actions(ExperimentObject("quickstart"), exp("delete")) == [SetFinalizers((F,))]
    held = ExperimentObject("quickstart", finalizers=("x", F))
    assert finalizer_actions(held, exp("delete")) == []
    assert finalizer_actions(held, exp("keep")) == [SetFinalizers(("x",))]
    assert finalizer_actions(ExperimentObject("quickstart"), exp("keep")) == []


def test_deletion_cleans_every_started_size_including_removed_widths():
    e = exp("delete")
    state = OperatorState(sizes={16: SizeRecord(started="r"), 32: SizeRecord(started="r")})
    obj = ExperimentObject("quickstart", finalizers=(F,), deleting=True)
    out = deletion_outcome(obj, e, expand(e), state)
    uris = tuple(f"gs://ladder-test/runs/quickstart/c{w}/checkpoints" for w in (16, 32, 64, 96))
    assert out.actions == [CleanupCheckpoints(uris), SetFinalizers(())]
    assert out.status == {} and out.phase == "Pending"


def test_deletion_with_retention_keep_deletes_nothing():
    e = exp("keep")
    obj = ExperimentObject("quickstart", finalizers=(F,), deleting=True)
    assert deletion_outcome(obj, e, expand(e), OperatorState()).actions == [SetFinalizers(())]
    unheld = ExperimentObject("quickstart", deleting=True)
    assert deletion_outcome(unheld, e, expand(e), OperatorState()).actions == []
