"""Resume and skip decisions, and the evaluation grid they rely on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ladder_api.errors import UserError
from ladder_api.grid import expected_ids
from ladder_api.plan import expand
from ladder_local.decisions import check_same_recipe, decide
from ladder_local.layout import run_location
from tests.local.conftest import tiny_experiment


def _run(**ev):
    return expand(tiny_experiment(**ev), root="/out").runs[0]


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
    new = expand(tiny_experiment(steps=8), root="/out").runs[0]
    check_same_recipe(_wire(old), new, has_checkpoints=False, root="/out/c8")  # nothing to protect
    check_same_recipe(_wire(old), old, has_checkpoints=True, root="/out/c8")
    with pytest.raises(UserError, match=r"different recipe: spec.training.steps: 6 -> 8.*-o DIR"):
        check_same_recipe(_wire(old), new, has_checkpoints=True, root="/out/c8")


def test_sharding_edits_after_start_resume_as_the_operator_accepts_them():
    """The operator's rule (tests/operator/test_reconcile.py) and this one are the same function."""
    old = _run()
    exp = tiny_experiment()
    exp.spec.training.sharding.fsdp = 2
    new = expand(exp, root="/out").runs[0]
    assert new.training.sharding.fsdp == 2
    check_same_recipe(_wire(old), new, has_checkpoints=True, root="/out/c8")


def test_a_config_written_by_an_older_version_is_compared_field_by_field():
    """An older config lacks fields added since (their legacy values apply) and may carry
    non-recipe fields that are gone: neither stops a resume."""
    old = _wire(_run())
    del old["training"]["logEverySteps"]
    old["training"]["someRemovedKnob"] = {"x": 1}
    old["training"]["sharding"]["fsdp"] = 4
    with pytest.raises(UserError, match="someRemovedKnob"):
        check_same_recipe(old, _run(), has_checkpoints=True, root="/out/c8")
    del old["training"]["someRemovedKnob"]
    check_same_recipe(old, _run(), has_checkpoints=True, root="/out/c8")


def test_evaluation_edits_keep_the_recipe():
    a = _run()
    b = expand(tiny_experiment(steps=6, numSamples=99), root="/out").runs[0]
    assert a.recipe_hash == b.recipe_hash


def test_where_outputs_go_precedence(tmp_path):
    """-o, then spec.local.outputDir, then spec.storage.outputUri (only when the spec sets it),
    then ./ladder-runs/<name>; outputs on gs:// keep the runner's state local."""
    exp = tiny_experiment()
    default = tmp_path / "ladder-runs" / "tiny"
    loc = run_location(exp, cwd=tmp_path)
    assert (loc.outputs, loc.state_dir, loc.ignored) == (str(default), default, None)
    assert "default" in loc.chosen_by

    exp.spec.storage = exp.spec.storage.model_validate({"outputUri": "gs://bkt/x/"})
    loc = run_location(exp, cwd=tmp_path)
    assert (loc.outputs, loc.state_dir, loc.remote) == ("gs://bkt/x/tiny", default, True)
    assert loc.chosen_by == "spec.storage.outputUri"
    assert expand(exp, root=loc.outputs).runs[0].paths == expand(exp).runs[0].paths  # the cluster's layout

    loc = run_location(exp, "x", cwd=tmp_path)
    assert (loc.outputs, loc.state_dir, loc.remote) == (str(tmp_path / "x"), tmp_path / "x", False)
    assert loc.chosen_by == "-o" and loc.ignored == "gs://bkt/x/"

    exp.spec.local.output_dir = "/abs/where"
    loc = run_location(exp, cwd=tmp_path)
    assert (loc.outputs, loc.state_dir) == ("/abs/where", Path("/abs/where"))
    assert loc.chosen_by == "spec.local.outputDir"

    loc = run_location(exp, "gs://other/run", cwd=tmp_path)
    assert (loc.outputs, loc.state_dir) == ("gs://other/run", default)


def test_the_default_output_uri_is_not_taken_for_a_choice():
    """storage.outputUri's default is the cluster's bucket: `ladder run` uses it only when the
    spec names it."""
    exp = tiny_experiment()
    assert exp.spec.storage.output_uri.startswith("gs://")
    assert not run_location(exp, cwd=Path("/w")).remote


def test_expand_puts_every_path_under_the_root():
    plan = expand(tiny_experiment(), root="/runs/tiny")
    assert [r.paths.root for r in plan.runs] == ["/runs/tiny/c8", "/runs/tiny/c16"]
    assert plan.runs[1].paths.results == "/runs/tiny/c16/results"
    assert plan.runs[1].paths.metrics == "/runs/tiny/c16/metrics.jsonl"
