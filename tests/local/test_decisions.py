"""Resume and skip decisions, and the evaluation grid they rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ladder_api.errors import UserError
from ladder_api.grid import expected_ids
from ladder_api.plan import expand
from ladder_local.decisions import check_same_recipe, decide
from ladder_local.layout import localize, run_directory
from tests.local.conftest import tiny_experiment


def _run(**ev):
    return localize(expand(tiny_experiment(**ev)), Path("/out")).runs[0]


def test_expected_ids_cover_the_grid_of_the_final_checkpoint():
    ids = expected_ids(_run(), [2, 4, 6])
    assert len(ids) == 2 * 2 * 2 * 2
    assert "c8-s6-ddim-n2-g3-fid-digits-classifier" in ids and not any("-s4-" in i for i in ids)


def test_before_training_ends_all_counts_the_kept_checkpoints_and_the_final_one():
    d = decide(_run(checkpoints="all"), [2, 4], [])
    assert d.train and d.expected == 3 * 16


def test_fresh_size_trains_and_then_evaluates():
    d = decide(_run(), [], [])
    assert d.train and d.evaluate and d.resume_step is None and "scratch" in d.reason


def test_partial_training_resumes_from_newest_checkpoint():
    d = decide(_run(), [2, 4], [])
    assert d.train and d.resume_step == 4 and "step 4" in d.reason


def test_trained_size_skips_training_and_evaluates_only_what_is_missing():
    run = _run()
    ids = sorted(expected_ids(run, [6]))
    d = decide(run, [4, 6], ids[:5])
    assert not d.train and d.evaluate and d.recorded == 5 and d.expected == 16
    assert "11 of 16" in d.reason


def test_complete_size_is_skipped_unless_forced():
    run = _run()
    ids = expected_ids(run, [6])
    assert not decide(run, [6], ids).evaluate
    assert decide(run, [6], ids, force_eval=True).evaluate


def test_results_of_other_settings_do_not_count():
    run = _run()
    d = decide(run, [6], {"c8-s6-ddim-n50-g7-fid-inception"})
    assert d.evaluate and d.recorded == 0


def _wire(run) -> dict:
    return json.loads(run.config_json())


def test_recipe_change_with_checkpoints_is_refused_with_a_way_out():
    old = _run()
    new = localize(expand(tiny_experiment(steps=8)), Path("/out")).runs[0]
    check_same_recipe(_wire(old), new, has_checkpoints=False, root=Path("/out/c8"))  # nothing to protect
    check_same_recipe(_wire(old), old, has_checkpoints=True, root=Path("/out/c8"))
    with pytest.raises(UserError, match=r"different recipe: spec.training.steps: 6 -> 8.*-o DIR"):
        check_same_recipe(_wire(old), new, has_checkpoints=True, root=Path("/out/c8"))


def test_sharding_edits_after_start_resume_as_the_operator_accepts_them():
    """The operator's rule (tests/operator/test_reconcile.py) and this one are the same function."""
    old = _run()
    exp = tiny_experiment()
    exp.spec.training.sharding.fsdp = 2
    new = localize(expand(exp), Path("/out")).runs[0]
    assert new.training.sharding.fsdp == 2
    check_same_recipe(_wire(old), new, has_checkpoints=True, root=Path("/out/c8"))


def test_a_config_written_by_an_older_version_is_compared_field_by_field():
    """An older config lacks fields added since (their legacy values apply) and may carry
    non-recipe fields that are gone: neither stops a resume."""
    old = _wire(_run())
    del old["training"]["logEverySteps"]
    old["training"]["someRemovedKnob"] = {"x": 1}
    old["training"]["sharding"]["fsdp"] = 4
    with pytest.raises(UserError, match="someRemovedKnob"):
        check_same_recipe(old, _run(), has_checkpoints=True, root=Path("/out/c8"))
    del old["training"]["someRemovedKnob"]
    check_same_recipe(old, _run(), has_checkpoints=True, root=Path("/out/c8"))


def test_evaluation_edits_keep_the_recipe():
    a = _run()
    b = localize(expand(tiny_experiment(steps=6, numSamples=99)), Path("/out")).runs[0]
    assert a.recipe_hash == b.recipe_hash


def test_run_directory_precedence(tmp_path):
    exp = tiny_experiment()
    assert run_directory(exp, cwd=tmp_path) == tmp_path / "ladder-runs" / "tiny"
    assert run_directory(exp, "x", cwd=tmp_path) == tmp_path / "x"
    exp.spec.local.output_dir = "/abs/where"
    assert run_directory(exp, cwd=tmp_path) == Path("/abs/where")


def test_localize_points_every_path_under_the_directory():
    plan = localize(expand(tiny_experiment()), Path("/runs/tiny"))
    assert [r.paths.root for r in plan.runs] == ["/runs/tiny/c8", "/runs/tiny/c16"]
    assert plan.runs[1].paths.results == "/runs/tiny/c16/results.json"
