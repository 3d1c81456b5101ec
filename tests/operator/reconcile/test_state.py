"""The operator's record (the state annotation): read leniently, written whole, and backed by the
JobSets' own annotations when lost."""

from __future__ import annotations

import json

from ladder_operator.reconcile.children import JobSetView, JobState
from ladder_operator.reconcile.keys import STATE_ANNOTATION
from ladder_operator.reconcile.state import OperatorState, SizeRecord, read_state, with_children


def raw(state) -> dict:
    text = state if isinstance(state, str) else json.dumps(state)
    return {"metadata": {"annotations": {STATE_ANNOTATION: text}}}


def test_garbage_reads_as_an_empty_record():
    for text in ("not json", "[1, 2]", json.dumps({"started": {"abc": "h", "32": 5}})):
        assert read_state(raw(text)) == OperatorState()
    assert read_state({}) == OperatorState()


def test_a_record_reads_back_what_was_written():
    state = OperatorState(recipe={"training.steps": 600}, shared="s1", sizes={
        32: SizeRecord(started="r1", trained="completed", evaluated="e1", done="e1"),
        64: SizeRecord(started="r1"),
    })
    wire = state.to_wire()
    assert wire == {"recipe": {"training.steps": 600}, "shared": "s1", "started": {"32": "r1", "64": "r1"},
                    "trained": {"32": "completed"}, "evaluated": {"32": "e1"}, "done": {"32": "e1"}}
    assert read_state(raw(wire)) == state


def test_a_legacy_nested_recipe_is_flattened_to_recipe_fields():
    legacy = {"training": {"steps": 600, "sharding": {"fsdp": 1}, "logEverySteps": 50}}
    recipe = read_state(raw({"recipe": legacy, "started": {"32": "r"}})).recipe
    assert recipe["training.steps"] == 600
    assert not any("sharding" in k or "logEverySteps" in k for k in recipe)


def test_with_sizes_replaces_given_widths_keeps_others_and_drops_empty_records():
    state = OperatorState(sizes={32: SizeRecord(started="a"), 16: SizeRecord(started="old-width")})
    new = state.with_sizes({32: SizeRecord(), 64: SizeRecord(started="b")})
    assert new.sizes == {16: SizeRecord(started="old-width"), 64: SizeRecord(started="b")}
    assert new.started() == {16: "old-width", 64: "b"}


def test_jobsets_stand_in_for_a_lost_record_without_overriding_it():
    jobsets = [
        JobSetView("e-c32", JobState.active, width="32", recipe_hash="from-jobset"),
        JobSetView("e-c64", JobState.active, width="64", recipe_hash="from-jobset"),
        JobSetView("e-c64-eval", JobState.completed, width="64", eval_hash="grid-1"),
        JobSetView("other-c96", JobState.active, width="96", recipe_hash="not-ours"),
    ]
    state = OperatorState(sizes={32: SizeRecord(started="recorded")})
    filled = with_children(state, "e", jobsets)
    assert filled.sizes == {32: SizeRecord(started="recorded"),
                            64: SizeRecord(started="from-jobset", evaluated="grid-1")}
