"""expand(): one resolved run per size, deterministic, and readable back by the pods."""

from __future__ import annotations

from ladder_api.loading import load_experiment, parse_experiment
from ladder_api.plan import RunConfig, expand
from ladder_api.spec import ScalingExperiment
from tests.conftest import EXAMPLES


def exp(**spec) -> ScalingExperiment:
    return parse_experiment({"metadata": {"name": "exp", "namespace": "ns"}, "spec": spec})


def test_one_run_per_width_in_start_order():
    e = exp(ladder={"widths": [128, 64, 96]})
    assert [r.width for r in expand(e).runs] == [64, 96, 128]
    e = exp(ladder={"widths": [128, 64, 96]}, scheduling={"order": "descending"})
    assert [r.width for r in expand(e).runs] == [128, 96, 64]
    e = exp(ladder={"widths": [128, 64, 96]}, scheduling={"order": "as-listed"})
    runs = expand(e).runs
    assert [r.width for r in runs] == [128, 64, 96] and [r.index for r in runs] == [0, 1, 2]


def test_run_names_paths_and_model():
    plan = expand(exp(ladder={"widths": [64]}, storage={"outputUri": "gs://bucket/out/"}))
    (run,) = plan.runs
    assert run.name == "exp-c64"
    assert run.experiment.name == "exp" and run.experiment.namespace == "ns"
    assert run.paths.root == "gs://bucket/out/exp/c64"
    assert run.paths.checkpoints == "gs://bucket/out/exp/c64/checkpoints"
    assert run.paths.metrics.endswith("/c64/metrics.jsonl")
    assert run.model.base_channels == 64 and round(run.model.params / 1e6) == 39
    assert expand(exp(ladder={"widths": [64]}), output_uri="/tmp/x").runs[0].paths.root == "/tmp/x/exp/c64"


def test_deterministic_and_config_json_round_trips():
    a = expand(load_experiment(EXAMPLES / "paper-v5e.yaml"))
    b = expand(load_experiment(EXAMPLES / "paper-v5e.yaml"))
    assert [r.config_json() for r in a.runs] == [r.config_json() for r in b.runs]
    for run in a.runs:
        assert RunConfig.model_validate_json(run.config_json()) == run


def test_spec_hash_follows_the_spec_and_recipe_hash_the_recipe():
    base = expand(exp(ladder={"widths": [64, 96]}))
    more_samples = expand(exp(ladder={"widths": [64, 96]}, evaluation={"numSamples": 10}))
    more_steps = expand(exp(ladder={"widths": [64, 96]}, training={"steps": 20_000}))
    assert base.spec_hash != more_samples.spec_hash
    assert base.runs[0].recipe_hash == more_samples.runs[0].recipe_hash
    assert base.runs[0].recipe_hash != more_steps.runs[0].recipe_hash
    assert base.runs[0].recipe_hash != base.runs[1].recipe_hash


def test_per_rule_sharding_reaches_the_run_but_not_the_recipe():
    spec = {
        "ladder": {"widths": [64, 512]},
        "resources": {
            "slices": [
                {"maxWidth": 320, "sliceType": "v5litepod-16"},
                {"sliceType": "v5litepod-64", "sharding": {"fsdp": 8}},
            ]
        },
    }
    plan = expand(exp(**spec))
    small, large = plan.runs
    assert small.training.sharding.fsdp == 1 and large.training.sharding.fsdp == 8
    assert large.slice.slice_type == "v5litepod-64"
    plain = expand(exp(ladder={"widths": [64, 512]}))
    assert plain.runs[1].recipe_hash == large.recipe_hash


def test_plan_carries_what_render_needs():
    plan = expand(exp(scheduling={"queue": "q", "priorityClass": "high"}, suspend=True))
    assert plan.scheduling.queue == "q" and plan.scheduling.priority_class == "high" and plan.suspend
