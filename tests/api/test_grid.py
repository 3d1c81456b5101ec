"""The evaluation grid: metric names, grid points, checkpoint selection, expected ids and the
evaluation hash, the one definition the evaluator, `ladder run` and the operator share."""

from __future__ import annotations

import dataclasses

import pytest

from ladder_api import grid
from ladder_api.errors import UserError
from ladder_api.plan import expand, short_hash
from ladder_api.spec import EvaluationSpec, SamplerName
from ladder_api.status import result_id
from tests.local.conftest import tiny_experiment


def _ev(**kw) -> EvaluationSpec:
    base = {"samplers": ["ddim", "dpmpp_2m"], "steps": [2, 4], "guidance_scales": [1.0, 3.0],
            "metrics": ["fid", "adherence"], "fid_features": "digits-classifier"}
    return EvaluationSpec(**{**base, **kw})


def test_metric_names_say_which_features():
    assert grid.fid_metric("inception") == "fid-inception"
    assert grid.metric_name("fid", "digits-classifier") == "fid-digits-classifier"
    assert grid.metric_name("clip", "inception") == "clip-score"
    assert grid.metric_name("adherence", "inception") == "adherence"
    assert grid.metric_names(_ev(metrics=["adherence", "fid", "clip"])) == [
        "adherence", "fid-digits-classifier", "clip-score"]
    assert grid.fid_features_of("fid-digits-classifier") == "digits-classifier"
    assert grid.fid_features_of("clip-score") is None


def test_grid_points_are_small_typed_values_in_spec_order():
    points = grid.grid_points(_ev(steps=[4, 2]))
    assert [(p.sampler, p.steps, p.guidance) for p in points[:3]] == [
        ("ddim", 4, 1.0), ("ddim", 4, 3.0), ("ddim", 2, 1.0)]
    assert len(points) == len(set(points)) == 8
    p = points[1]
    assert isinstance(p.sampler, SamplerName) and isinstance(p.guidance, float)
    assert p.label == "ddim n=4 g=3"
    assert p.result_id(16, 100, "adherence") == result_id(16, 100, "ddim", 4, 3.0, "adherence")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.steps = 8  # type: ignore[misc]


@pytest.mark.parametrize(("sel", "available", "planned"), [
    ("final", [2, 4], [6]),           # not trained yet: still the final step
    ("final", [4, 6], [6]),
    ("all", [2, 4], [2, 4, 6]),       # what is kept so far, and the final one to come
    ("all", [4, 6, 8], [4, 6]),       # a checkpoint past training.steps is not this run's
    ([4, 2, 4], [6], [2, 4]),
])
def test_planned_checkpoints(sel, available, planned):
    assert grid.planned_checkpoints(_ev(checkpoints=sel), 6, available) == planned


def test_final_means_training_steps_not_the_newest_checkpoint():
    assert grid.select_checkpoints(_ev(), 6, [2, 4, 6], "/ck") == [6]
    with pytest.raises(UserError, match=r"training.steps = 6, which is not in /ck \(newest: step 4\)"):
        grid.select_checkpoints(_ev(), 6, [2, 4], "/ck")
    with pytest.raises(UserError, match=r"not in /ck \(no checkpoint yet\)"):
        grid.select_checkpoints(_ev(), 6, [], "/ck")


def test_all_and_listed_checkpoints_must_be_present():
    assert grid.select_checkpoints(_ev(checkpoints="all"), 6, [6, 2, 4], "/ck") == [2, 4, 6]
    assert grid.select_checkpoints(_ev(checkpoints=[4]), 6, [2, 4, 6], "/ck") == [4]
    with pytest.raises(UserError, match=r"asks for steps \[3\], not in /ck; available: \[2, 4, 6\]"):
        grid.select_checkpoints(_ev(checkpoints=[3, 4]), 6, [2, 4, 6], "/ck")
    with pytest.raises(UserError, match="no checkpoint found at /ck"):
        grid.select_checkpoints(_ev(checkpoints="all"), 6, [], "/ck")


def test_expected_ids_are_what_the_evaluator_records():
    """Every (checkpoint, point, metric) id once; the evaluator and `ladder run` both use these."""
    run = expand(tiny_experiment(checkpoints="all")).runs[0]
    ids = grid.expected_ids(run, [2, 4, 6])
    assert len(ids) == 3 * 2 * 2 * 2 * 2
    assert "c8-s4-dpmpp_2m-n4-g3-fid-digits-classifier" in ids
    assert grid.expected_ids(run, [2, 4]) == ids  # the final step is planned before it exists


def test_evaluation_hash_changes_with_the_grid_and_is_stable_across_versions():
    assert grid.evaluation_hash(_ev()) == grid.evaluation_hash(_ev())
    assert grid.evaluation_hash(_ev(steps=[2, 4, 8])) != grid.evaluation_hash(_ev())
    # Recorded by earlier operators in their state annotation: a change would re-run every
    # finished size's evaluation job after an upgrade.
    assert grid.evaluation_hash(EvaluationSpec()) == "9bbb1046d18c"


def test_a_field_added_later_at_its_legacy_value_keeps_the_hash_earlier_versions_recorded():
    ev = _ev()
    before_the_field = {k: v for k, v in ev.to_wire(exclude_none=False).items() if k != "ddimEta"}
    legacy = {"ddimEta": 0.0}  # as if ddimEta were new, and 0 what Ladder did before it
    recorded = short_hash(before_the_field, 12)
    assert grid.evaluation_hash(ev, legacy) == recorded
    assert grid.evaluation_hash(ev.model_copy(update={"ddim_eta": 0.5}), legacy) != recorded
