"""Refusing recipe edits after sizes started (the rule of ladder_api.recipe)."""

from __future__ import annotations

from ladder_api.plan import expand
from ladder_api.spec import ScalingExperiment
from ladder_operator.reconcile.refusal import refused_edits
from ladder_operator.reconcile.state import OperatorState, SizeRecord
from tests.operator.test_reconcile import experiment


def plan(**changes):
    return expand(ScalingExperiment.model_validate(experiment(**changes)))


def started_with(p, **sizes) -> OperatorState:
    return OperatorState(recipe=p.runs[0].recipe(), sizes={32: SizeRecord(started=p.run(32).recipe_hash)})


def test_nothing_started_nothing_refused():
    assert refused_edits(OperatorState(), plan(training__learningRate=0.004)) == []


def test_recipe_edits_are_named_field_by_field():
    state = started_with(plan())
    assert refused_edits(state, plan()) == []
    assert refused_edits(state, plan(training__steps=700, ladder__numHeads=2)) == [
        "spec.ladder.numHeads: 4 -> 2", "spec.training.steps: 600 -> 700",
    ]
    assert refused_edits(state, plan(training__sharding={"fsdp": 2})) == [], "sharding is not the recipe"


def test_without_the_recorded_recipe_the_hashes_still_tell():
    p = plan()
    state = OperatorState(sizes={32: SizeRecord(started=p.run(32).recipe_hash)})
    assert refused_edits(state, p) == []
    changed = refused_edits(state, plan(training__steps=700))
    assert len(changed) == 1 and changed[0].startswith("the recipe of size c32 changed (recipe hash ")
