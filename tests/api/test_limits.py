"""The documented limits (ladder_api.limits): every valid spec's objects fit Kubernetes, and a
spec past a limit is refused naming the field.

The largest objects come from the largest spec the caps allow: every list at its maxItems and
every capped string at its maxLength. It is built with the grid's measurement cap left out
(model_construct at the top), which makes it larger than any valid spec, so what fits here fits
for every valid one."""

from __future__ import annotations

import json

import pytest

from ladder_api import grid
from ladder_api import limits as lim
from ladder_api.crd import open_api_schema
from ladder_api.errors import SpecError
from ladder_api.loading import parse_experiment
from ladder_api.plan import expand
from ladder_api.spec import (
    DataSpec,
    EvaluationSpec,
    LadderSpec,
    ObjectMeta,
    ResourcesSpec,
    ScalingExperiment,
    ScalingExperimentSpec,
    SchedulingSpec,
    StorageSpec,
    TrainingSpec,
)
from ladder_operator.limits import config_map_bytes, object_problems
from ladder_operator.render import render

ETCD_REQUEST_LIMIT = 1536 * 1024


def uri(prefix: str = "gs://") -> str:
    return prefix + "b" * (lim.MAX_URI - len(prefix))


def largest(widths: int = lim.MAX_WIDTHS) -> ScalingExperiment:
    levels = lim.MAX_LEVELS
    ladder = LadderSpec(
        channel_mult=list(range(1, levels + 1)), attention_levels=list(range(levels)),
        latent_size=2 ** (levels - 1), widths=[32 * (k + 1) for k in range(lim.MAX_WIDTHS)],
    ).model_copy(update={"widths": [32 * (k + 1) for k in range(widths)]})  # past the cap: unvalidated
    sha = "sha256:" + "0" * 64
    data = DataSpec.model_validate({
        "trainUri": uri(), "textEncoder": {"name": "t" * lim.MAX_TEXT, "weightsUri": uri(), "hash": sha},
        "autoencoder": {"kind": "sd-vae", "weightsUri": uri(), "hash": sha},
        "referenceSet": {"name": "r" * lim.MAX_TEXT, "uri": uri(), "statsUri": uri()},
        "prepare": {"webdataset": [uri() for _ in range(lim.MAX_SOURCES)], "image": uri("")},
    })
    training = TrainingSpec(compilation_cache_uri=uri(), steps=999_999_999)
    evaluation = EvaluationSpec.model_validate({
        "samplers": ["ddim", "ddpm", "dpmpp_2m"][: lim.MAX_SAMPLERS],
        "steps": [100_000 + i for i in range(lim.MAX_GRID_LIST)],
        "budgets": [1000.0 + i * 0.123456789012345 for i in range(lim.MAX_GRID_LIST)],
        "maxSteps": {"ddim": 999_999, "ddpm": 999_999, "dpmpp_2m": 999_999},
        "guidanceScales": [1.0 + i * 0.123456789012345 for i in range(lim.MAX_GRID_LIST)],
        "bestOfGuidance": [1.0 + i * 0.123456789012345 for i in range(lim.MAX_GRID_LIST)],
        "frontierSamplers": ["ddim", "ddpm", "dpmpp_2m", "pooled"][: lim.MAX_VIEWS],
        "metrics": ["fid", "clip", "adherence"][: lim.MAX_METRICS],
        "inceptionWeightsUri": uri("/"), "clipWeightsUri": uri("/"),
        "clipModel": "m" * lim.MAX_TEXT, "clipPretrained": "p" * lim.MAX_TEXT,
        "checkpoints": [999_000_000 + i for i in range(lim.MAX_CHECKPOINT_STEPS)],
    })
    rules = [{"maxWidth": 32 * (k + 1), "sliceType": "v5litepod-256"} for k in range(lim.MAX_SLICE_RULES - 1)]
    resources = ResourcesSpec.model_validate({"slices": [*rules, {"sliceType": "v5litepod-256"}]})
    spec = ScalingExperimentSpec.model_construct(
        ladder=ladder, data=data, training=training, resources=resources, scheduling=SchedulingSpec(),
        evaluation=evaluation, storage=StorageSpec(output_uri=uri()), local=ScalingExperimentSpec().local,
        suspend=False,
    )
    meta = ObjectMeta(name="e" * 40, namespace="n" * 63, uid="0" * 36)
    return ScalingExperiment.model_construct(api_version="ladder.dev/v1alpha1", kind="ScalingExperiment",
                                             metadata=meta, spec=spec)


def test_the_largest_spec_the_caps_allow_renders_objects_that_fit():
    plan = expand(largest())
    assert len(plan.runs) == lim.MAX_WIDTHS
    size = config_map_bytes(plan)
    assert size <= lim.CONFIG_MAP_LIMIT, f"run ConfigMap {size} bytes"
    assert object_problems(plan) == []
    for obj in render(plan):
        assert len(json.dumps(obj, separators=(",", ":"))) < ETCD_REQUEST_LIMIT, obj["metadata"]["name"]


def test_a_config_map_past_1_mib_is_refused_naming_the_widths():
    """Whatever the caps become, validate measures the rendered ConfigMap (520 widths rendered
    1.1 MB before the caps)."""
    plan = expand(largest(widths=200))
    assert config_map_bytes(plan) > lim.CONFIG_MAP_LIMIT
    (problem,) = object_problems(plan)
    assert problem.startswith("ladder.widths: 200 widths render a ConfigMap") and "1,048,576" in problem


def doc(**spec) -> dict:
    return {"apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": "x"},
            "spec": spec}


def problems(data) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_experiment(data, "f.yaml")
    return info.value.problems


@pytest.mark.parametrize(("spec", "where"), [
    ({"ladder": {"widths": [32 * (k + 1) for k in range(520)]}}, "spec.ladder.widths"),
    ({"evaluation": {"steps": list(range(1, 40))}}, "spec.evaluation.steps"),
    ({"evaluation": {"guidanceScales": [1.0] * 33}}, "spec.evaluation.guidanceScales"),
    ({"evaluation": {"checkpoints": list(range(1, 66))}}, "spec.evaluation.checkpoints"),
    ({"evaluation": {"budgets": [float(b) for b in range(1, 40)]}}, "spec.evaluation.budgets"),
    ({"evaluation": {"bestOfGuidance": [2.0] * 33}}, "spec.evaluation.bestOfGuidance"),
    ({"evaluation": {"frontierSamplers": ["ddim"] * 5}}, "spec.evaluation.frontierSamplers"),
    ({"evaluation": {"clipModel": "m" * 300}}, "spec.evaluation.clipModel"),
    ({"data": {"referenceSet": {"uri": "gs://" + "x" * 600}}}, "spec.data.referenceSet.uri"),
    ({"data": {"trainUri": "gs://" + "x" * 600}}, "spec.data.trainUri"),
    ({"storage": {"outputUri": "gs://" + "x" * 600}}, "spec.storage.outputUri"),
    ({"ladder": {"channelMult": [1] * 9}}, "spec.ladder.channelMult"),
])
def test_a_list_or_string_past_its_cap_names_the_field(spec, where):
    got = problems(doc(**spec))
    assert any(p.startswith(where) and "at most" in p for p in got), got


def test_a_grid_past_the_measurement_cap_is_refused_with_its_count():
    grid = {"steps": list(range(1, 33)), "guidanceScales": [1.0 + i for i in range(32)]}
    (p,) = problems(doc(ladder={"widths": [32 * (k + 1) for k in range(40)]}, evaluation=grid))
    assert p.startswith("spec: ") and "245,760 measurements (40 widths x 1 checkpoints x 3072" in p
    assert "100,000" in p


def test_the_paper_grid_with_every_kept_checkpoint_is_within_the_cap():
    import yaml

    from tests.conftest import EXAMPLES

    raw = yaml.safe_load((EXAMPLES / "paper-v5e.yaml").read_text())
    raw["spec"]["evaluation"]["checkpoints"] = "all"
    exp = parse_experiment(raw, "paper")
    # 5 kept checkpoints x (3 samplers x 6 steps, and the budgets' steps of each size) x 9 scales x 2
    total = sum(grid.expected_count(run) for run in expand(exp).runs)
    assert total == 34_380 <= lim.MAX_MEASUREMENTS
    assert total * exp.spec.evaluation.bootstrap.resamples <= lim.MAX_REPLICATES


def test_bootstrap_replicates_past_their_cap_are_refused_naming_the_field():
    got = problems(doc(evaluation={"bootstrap": {"resamples": 10_000}}))
    assert any(p.startswith("spec: evaluation.bootstrap.resamples: ") and "4,000,000" in p for p in got), got


def test_the_crd_carries_the_caps():
    spec = open_api_schema()["properties"]["spec"]["properties"]
    ev = spec["evaluation"]["properties"]
    assert spec["ladder"]["properties"]["widths"]["maxItems"] == lim.MAX_WIDTHS
    assert ev["steps"]["maxItems"] == ev["guidanceScales"]["maxItems"] == lim.MAX_GRID_LIST
    assert spec["resources"]["properties"]["slices"]["maxItems"] == lim.MAX_SLICE_RULES
    assert spec["resources"]["properties"]["overrides"]["maxProperties"] == lim.MAX_WIDTHS
    assert spec["storage"]["properties"]["outputUri"]["maxLength"] == lim.MAX_URI
    assert "At most 48 widths" in spec["ladder"]["properties"]["widths"]["description"]
    summary = open_api_schema()["properties"]["status"]["properties"]["summary"]["properties"]
    assert summary["frontier"]["maxItems"] == summary["pareto"]["maxItems"] == lim.MAX_POINTS
