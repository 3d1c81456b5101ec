"""The evaluation grid: metric names, grid points, checkpoint selection, expected ids and the
evaluation hash, the one definition the evaluator, `ladder run` and the operator share."""

from __future__ import annotations

import dataclasses

import pytest

from ladder_api import grid
from ladder_api.errors import UserError
from ladder_api.plan import expand, short_hash
from ladder_api.spec import EvaluationSpec, SamplerName
from ladder_api.status import Result, result_id
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
    # The default grid before 7.5 joined it (the fields added since are at their legacy values):
    old_default = EvaluationSpec(guidance_scales=[1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert grid.evaluation_hash(old_default) == "9bbb1046d18c"
    # Choosing how results are summarised re-runs nothing.
    views = old_default.model_copy(update={"frontier_samplers": ["pooled"], "best_of_guidance": [2.0]})
    assert grid.evaluation_hash(views) == "9bbb1046d18c"
    assert grid.evaluation_hash(old_default.model_copy(update={"budgets": [3.0]})) != "9bbb1046d18c"


def test_a_field_added_later_at_its_legacy_value_keeps_the_hash_earlier_versions_recorded():
    ev = _ev()
    # what the old version lacked
    later = {"ddimEta", *grid.EVALUATION_LEGACY, *grid.SUMMARY_ONLY, *grid.NOT_MEASURED}
    before_the_field = {k: v for k, v in ev.to_wire(exclude_none=False).items() if k not in later}
    legacy = {**grid.EVALUATION_LEGACY, "ddimEta": 0.0}  # as if ddimEta were new, 0 what Ladder did
    recorded = short_hash(before_the_field, 12)
    assert grid.evaluation_hash(ev, legacy) == recorded
    assert grid.evaluation_hash(ev.model_copy(update={"ddim_eta": 0.5}), legacy) != recorded


@pytest.mark.parametrize(("sel", "kept"), [("final", [6]), ("all", [4, 6]), ([2, 4, 4], [2, 4])])
def test_expected_count_is_the_ids_over_the_checkpoints_the_trainer_keeps(sel, kept):
    """The status and the limits count from the spec alone, before any checkpoint exists; the
    count is what expected_ids names once training is done (checkpoint.keep 2 of one save every
    2 steps of 6: steps 4 and 6)."""
    run = expand(tiny_experiment(checkpoints=sel)).runs[0]
    assert grid.checkpoint_count(run.evaluation, run.training) == len(kept)
    assert grid.expected_count(run) == len(grid.expected_ids(run, kept))
    cost = run.model.normalized_cost  # budgets of 3 and 7 of its steps: two more steps per sampler
    with_budgets = expand(tiny_experiment(checkpoints=sel, budgets=[3 * cost, 7 * cost])).runs[0]
    assert grid.expected_count(with_budgets) == len(grid.expected_ids(with_budgets, kept))
    assert grid.expected_count(with_budgets) > grid.expected_count(run), "budgets add steps per size"


def test_counted_keeps_the_results_of_the_current_grid():
    """A grid that shrank, another width, a checkpoint past training.steps or not selected, a
    metric no longer measured: results of record that no longer count towards the grid."""
    run = expand(tiny_experiment(checkpoints="final")).runs[0]  # width 8, steps 6

    def r(width=8, checkpoint_step=6, sampler="ddim", steps=2, guidance=3.0, metric="adherence"):
        return Result(
            id=result_id(width, checkpoint_step, sampler, steps, guidance, metric), width=width,
            checkpoint_step=checkpoint_step, sampler=sampler, steps=steps, guidance=guidance,
            metric=metric, value=0.5, num_samples=10, gflops_per_forward=1.0, sampling_cost=1.0,
            sampling_cost_with_guidance=2.0,
        )

    inside = [r(), r(sampler="dpmpp_2m", steps=4, guidance=1.0, metric="fid-digits-classifier")]
    outside = [r(width=16), r(checkpoint_step=4), r(steps=8), r(guidance=2.0), r(sampler="ddpm"),
               r(metric="clip-score"), r(metric="fid-inception")]
    assert grid.counted(run, inside + outside) == inside
    every = expand(tiny_experiment(checkpoints="all")).runs[0]
    assert grid.counted(every, [r(checkpoint_step=2), r(checkpoint_step=8)]) == [r(checkpoint_step=2)]


def test_the_summary_ranks_by_the_fid_the_spec_measures():
    assert grid.ranking_fid(_ev()) == "fid-digits-classifier"
    assert grid.ranking_fid(_ev(metrics=["adherence"])) is None


FIGURE_9_BUDGETS = [3, 6, 10, 14, 20, 28, 38, 88, 200]


@pytest.mark.parametrize("cost,ddim,dpmpp", [
    # Table 1's normalized costs; round(budget / cost) by hand, kept within 1..1000 (DDIM) and
    # 1..20 (DPM-Solver++). c64 at 0.07: 3/0.07 = 42.9 -> 43, ..., 88/0.07 = 1257 is out of range.
    (0.07, [43, 86, 143, 200, 286, 400, 543], []),
    (0.13, [23, 46, 77, 108, 154, 215, 292, 677], []),
    (1.00, [3, 6, 10, 14, 20, 28, 38, 88, 200], [3, 6, 10, 14, 20]),
    (2.39, [1, 3, 4, 6, 8, 12, 16, 37, 84], [1, 3, 4, 6, 8, 12, 16]),
    # c768 at 5.17: 3 and 6 both round to 1 step, 200/5.17 = 38.7 -> 39
    (5.17, [1, 2, 3, 4, 5, 7, 17, 39], [1, 2, 3, 4, 5, 7, 17]),
])
def test_budgets_derive_each_sizes_steps_per_sampler(cost, ddim, dpmpp):
    ev = _ev(budgets=FIGURE_9_BUDGETS, samplers=["ddim", "dpmpp_2m"])
    assert grid.budget_steps(ev, "ddim", cost, 1000) == ddim
    assert grid.budget_steps(ev, "dpmpp_2m", cost, 1000) == dpmpp
    assert grid.budget_steps(_ev(), "ddim", cost, 1000) == [], "no budgets: explicit steps only"


def test_a_runs_grid_adds_its_budget_steps_after_the_explicit_ones():
    cost = expand(tiny_experiment()).runs[0].model.normalized_cost
    exp = tiny_experiment(budgets=[3 * cost, 7 * cost, 4 * cost], maxSteps={"dpmpp_2m": 5})
    run = expand(exp).runs[0]
    points = grid.run_grid_points(run)
    steps = {s: list(dict.fromkeys(p.steps for p in points if p.sampler == s)) for s in ("ddim", "dpmpp_2m")}
    assert steps == {"ddim": [2, 4, 3, 7], "dpmpp_2m": [2, 4, 3]}  # 4 is explicit; 7 > maxSteps 5
    assert len(points) == 7 * 2  # x two guidance scales
    ids = grid.expected_ids(run, [run.training.steps])
    assert "c8-s6-ddim-n7-g3-fid-digits-classifier" in ids and len(ids) == 14 * 2
    assert expand(exp).runs[1].width == 16
    assert [p.steps for p in grid.run_grid_points(expand(exp).runs[1])] != [p.steps for p in points]


def test_summary_views_must_name_what_is_evaluated():
    with pytest.raises(ValueError, match="frontierSamplers"):
        _ev(samplers=["ddim"], frontier_samplers=["dpmpp_2m"])
    with pytest.raises(ValueError, match="bestOfGuidance"):
        _ev(guidance_scales=[2.0], best_of_guidance=[7.5])
    with pytest.raises(ValueError, match="maxSteps"):
        _ev(max_steps={"euler": 3})
    assert EvaluationSpec().frontier_views() == ["ddim"]
    assert EvaluationSpec(samplers=["dpmpp_2m"]).frontier_views() == ["pooled"]
    assert EvaluationSpec().best_of_guidance_scales() == [1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert 7.5 in EvaluationSpec().guidance_scales
    assert EvaluationSpec(guidance_scales=[1.0, 4.0]).best_of_guidance_scales() == [1.0, 4.0]


# --- workers -------------------------------------------------------------------------------------


def _work(ev: EvaluationSpec, steps=(6,)) -> list:
    return [(s, p) for s in steps for p in grid.grid_points(ev)]


@pytest.mark.parametrize("workers", [1, 2, 3, 5, 16])
def test_worker_shares_are_disjoint_and_cover_the_grid(workers):
    ev = EvaluationSpec(samplers=["ddim", "ddpm"], steps=[4, 10, 50], guidance_scales=[1.0, 3.0, 7.0])
    work = _work(ev, steps=(100, 200))
    shares = [grid.worker_share(work, workers, i) for i in range(workers)]
    flat = [item for share in shares for item in share]
    assert sorted(flat, key=work.index) == work and len(set(flat)) == len(work)
    for share in shares:  # each share keeps the grid's order (checkpoint loads stay grouped)
        assert share == sorted(share, key=work.index)
    # the same call anywhere (another pod, a restarted one) gives the same share
    assert [grid.worker_share(list(work), workers, i) for i in range(workers)] == shares


def test_worker_shares_balance_forwards_not_counts():
    ev = EvaluationSpec(samplers=["ddim"], steps=[4, 6, 8, 10, 20, 50], guidance_scales=[1.0, 1.5, 2.0, 3.0])
    work = _work(ev)
    loads = [sum(grid.point_cost(p) for _, p in grid.worker_share(work, 4, i)) for i in range(4)]
    total = sum(grid.point_cost(p) for _, p in work)
    # the biggest single point (50 steps guided: 100 forwards) bounds the imbalance
    assert max(loads) - min(loads) <= 100 and sum(loads) == total
    assert grid.point_cost(grid.GridPoint(SamplerName.ddim, 50, 1.0)) == 50
    assert grid.point_cost(grid.GridPoint(SamplerName.ddim, 50, 3.0)) == 100


def test_a_worker_index_outside_the_partition_is_a_user_error():
    work = _work(_ev())
    for bad in (-1, 3):
        with pytest.raises(UserError, match=r"worker index .* evaluation.workers = 3"):
            grid.worker_share(work, 3, bad)


def test_more_workers_than_grid_points_is_refused_naming_the_field():
    from pydantic import ValidationError

    assert _ev(workers=8).workers == 8  # 2 samplers x 2 steps x 2 scales
    with pytest.raises(ValidationError, match=r"workers \(9\) is more than the evaluation's grid points \(8"):
        _ev(workers=9)
    assert _ev(workers=16, checkpoints=[2, 4]).workers == 16


def test_workers_do_not_change_the_evaluation_hash():
    assert grid.evaluation_hash(_ev(workers=4)) == grid.evaluation_hash(_ev())


@pytest.mark.parametrize("workers", [8, 16])
def test_at_the_papers_grid_the_longest_worker_is_within_one_percent_of_an_even_split(workers):
    """The paper's grid (3 samplers x 6 step counts x 8 scales = 144 points, 4,704 forwards per
    sample): N workers cut a size's evaluation wall-clock N-fold, not by the slowest share."""
    work = _work(EvaluationSpec(guidance_scales=[1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]))
    loads = [sum(grid.point_cost(p) for _, p in grid.worker_share(work, workers, i)) for i in range(workers)]
    assert len(work) == 144 and sum(loads) == 4704
    assert max(loads) <= 1.01 * 4704 / workers
