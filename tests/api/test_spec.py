"""The spec model: defaults, examples, and errors that name the field and what is allowed."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from ladder_api.errors import SpecError
from ladder_api.loading import load_experiment, parse_experiment
from ladder_api.spec import ScalingExperiment
from ladder_api.status import ScalingExperimentStatus
from ladder_api.tpu import SLICES
from tests.conftest import EXAMPLES

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def doc(**spec) -> dict:
    return {
        "apiVersion": "ladder.dev/v1alpha1",
        "kind": "ScalingExperiment",
        "metadata": {"name": "x"},
        "spec": spec,
    }


def problems(data) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_experiment(data, "f.yaml")
    return info.value.problems


def _models(model: type[BaseModel], seen: set):
    if model in seen:
        return
    seen.add(model)
    yield model
    for f in model.model_fields.values():
        stack = [f.annotation]
        while stack:
            t = stack.pop()
            stack.extend(typing.get_args(t))
            if isinstance(t, type) and issubclass(t, BaseModel):
                yield from _models(t, seen)


def test_examples_exist():
    names = {p.name for p in EXAMPLE_FILES}
    assert {"quickstart.yaml", "paper-v5e.yaml", "paper-v5p.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_load_and_round_trip(path):
    exp = load_experiment(path)
    again = ScalingExperiment.model_validate(exp.to_wire())
    assert again == exp


@pytest.mark.parametrize("name", ["paper-v5e.yaml", "paper-v5p.yaml"])
def test_paper_examples_carry_the_stated_recipe(name):
    spec = load_experiment(EXAMPLES / name).spec
    assert spec.ladder.widths == [64, 96, 128, 160, 192, 224, 256, 288, 320, 512, 768]
    assert spec.ladder.context_dim == 1024
    training = spec.training
    assert (training.steps, training.global_batch, training.learning_rate) == (500_000, 2048, 1e-4)
    assert spec.evaluation.guidance_scales == [1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.5, 8.0]
    assert spec.evaluation.best_of_guidance_scales() == [1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    assert spec.evaluation.frontier_views()[0] == "ddim" and spec.evaluation.budgets
    assert (spec.training.initialization.value, spec.training.ema.warmup) == ("compvis", True)
    assert spec.data.reference_set.uri.endswith(".npz") and spec.data.reference_set.stats_uri
    assert spec.evaluation.num_samples == 30_000
    generation = "v5e" if "v5e" in name else "v5p"
    for w in spec.ladder.widths:
        assert SLICES[spec.resources.slice_for(w).slice_type].generation.name == generation
    # bigger models never get fewer chips than smaller ones
    chips = [SLICES[spec.resources.slice_for(w).slice_type].chips * spec.resources.slice_for(w).num_slices
             for w in spec.ladder.widths]
    assert chips == sorted(chips)
    assert spec.resources.slice_for(768).num_slices > 1
    assert spec.sharding_for(768).fsdp > 1 and spec.sharding_for(64).fsdp == 1


def test_a_name_is_all_a_spec_needs():
    exp = parse_experiment({"metadata": {"name": "tiny"}})
    assert exp.spec.ladder.widths and exp.spec.training.steps == 500_000


def test_every_field_is_described():
    missing = [
        f"{m.__name__}.{n}"
        for root in (ScalingExperiment, ScalingExperimentStatus)
        for m in _models(root, set())
        for n, f in m.model_fields.items()
        if not f.description
    ]
    assert missing == []


def test_bad_width_is_reported_at_widths():
    (p,) = problems(doc(ladder={"widths": [64, 100]}))
    assert p.startswith("spec.ladder.widths: ") and "100" in p and "normGroups 32" in p


def test_duplicate_widths():
    (p,) = problems(doc(ladder={"widths": [64, 64]}))
    assert p.startswith("spec.ladder.widths: ") and "unique" in p


@pytest.mark.parametrize("bad", [0, -64, "big", 100_000])
def test_width_values(bad):
    (p,) = problems(doc(ladder={"widths": [64, bad]}))
    assert p.startswith("spec.ladder.widths[1]: ")


def test_attention_level_that_does_not_exist():
    (p,) = problems(doc(ladder={"attentionLevels": [0, 4]}))
    assert p.startswith("spec.ladder.attentionLevels: ") and "0..3" in p


def test_latent_size_must_halve():
    (p,) = problems(doc(ladder={"latentSize": 20}))
    assert p.startswith("spec.ladder.latentSize: ") and "divisible by 8" in p


def test_unknown_field_names_its_path():
    (p,) = problems(doc(training={"stpes": 10}))
    assert p == "spec.training.stpes: unknown field (check the spelling; fields are camelCase)"


def test_unknown_slice_type_lists_the_valid_ones():
    (p,) = problems(doc(resources={"slices": [{"sliceType": "v6e-8"}]}))
    assert p.startswith("spec.resources.slices[0].sliceType: unknown TPU slice type 'v6e-8'")
    for name in SLICES:
        assert name in p


def test_several_problems_one_line_each():
    ps = problems(doc(training={"steps": 0, "learningRate": -1}, evaluation={"samplers": ["euler"]}))
    assert len(ps) == 3
    assert any(p.startswith("spec.training.steps: ") for p in ps)
    assert any(p.startswith("spec.training.learningRate: ") for p in ps)
    euler = next(p for p in ps if p.startswith("spec.evaluation.samplers[0]: "))
    assert "ddim" in euler and "dpmpp_2m" in euler


def test_no_rule_covers_a_width():
    (p,) = problems(doc(ladder={"widths": [64, 768]}, resources={"slices": [{"maxWidth": 320}]}))
    assert "resources.slices" in p and "768" in p


def test_override_for_a_width_not_in_the_ladder():
    ps = problems(doc(ladder={"widths": [64]}, resources={"overrides": {"96": {"sliceType": "v5p-8"}}}))
    assert "resources.overrides" in ps[0] and "96" in ps[0]


def test_override_keys_must_be_widths():
    (p,) = problems(doc(resources={"overrides": {"big": {"sliceType": "v5p-8"}}}))
    assert p.startswith("spec.resources.overrides: ")


def test_override_wins_over_rules():
    overrides = {"96": {"sliceType": "v5p-8"}}
    exp = parse_experiment(doc(ladder={"widths": [64, 96]}, resources={"overrides": overrides}))
    assert exp.spec.resources.slice_for(96).slice_type == "v5p-8"
    assert exp.spec.resources.slice_for(64).slice_type == "v5litepod-16"


def test_eval_slice_must_be_one_host():
    (p,) = problems(doc(resources={"evalSlice": {"sliceType": "v5litepod-16"}}))
    assert p.startswith("spec.resources.evalSlice: ") and "v5litepod-4" in p


def test_fsdp_must_divide_the_slice():
    ps = problems(doc(resources={"slices": [{"sliceType": "v5litepod-16", "sharding": {"fsdp": 3}}]}))
    assert "fsdp 3" in ps[0] and "16 chips" in ps[0]


@pytest.mark.parametrize("name", ["1abc", "Upper", "a" * 41, "with_underscore", "trailing-"])
def test_experiment_names(name):
    (p,) = problems({"metadata": {"name": name}})
    assert p.startswith("metadata.name: ") and "DNS-1035" in p


def test_missing_metadata():
    (p,) = problems({"spec": {}})
    assert p.startswith("metadata: ")


def test_checkpoints_union():
    exp = parse_experiment(doc(evaluation={"checkpoints": [1000, 2000]}))
    assert exp.spec.evaluation.checkpoints == [1000, 2000]
    ps = problems(doc(evaluation={"checkpoints": "best"}))
    assert len(ps) == 1 and ps[0].startswith("spec.evaluation.checkpoints: ") and "final" in ps[0]


def test_load_errors(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_experiment(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: [\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        load_experiment(bad)
    two = tmp_path / "two.yaml"
    two.write_text("metadata: {name: a}\n---\nmetadata: {name: b}\n")
    with pytest.raises(SpecError, match="exactly one"):
        load_experiment(two)


@pytest.mark.parametrize(("field", "bad"), [
    ("resamples", 0), ("resamples", 10_001), ("confidence", 0.0), ("confidence", 1.0), ("confidence", 95),
])
def test_bootstrap_settings_are_bounded(field, bad):
    (p,) = problems(doc(evaluation={"bootstrap": {field: bad}}))
    assert p.startswith(f"spec.evaluation.bootstrap.{field}: ")


@pytest.mark.parametrize("bad", [0, 101])
def test_noise_seeds_are_bounded(bad):
    (p,) = problems(doc(evaluation={"seeds": bad}))
    assert p.startswith("spec.evaluation.seeds: ")


def test_prepare_section_needs_one_layout_and_a_single_host_slice():
    from pydantic import ValidationError

    from ladder_api.spec import PrepareSpec

    assert PrepareSpec(webdataset=["a.tar"]).source_args() == ["--webdataset", "a.tar"]
    coco = PrepareSpec(coco="c.json", images="val2014/", part_size=5)
    assert coco.source_args() == ["--coco", "c.json", "--images", "val2014/", "--part-size", "5"]
    for bad, named in (
        ({}, "give one input layout"),
        ({"webdataset": ["a.tar"], "coco": "c.json"}, "webdataset, coco"),
        ({"captions": "c.jsonl"}, "captions needs images"),
        ({"webdataset": ["a.tar"], "sliceType": "v5litepod-16"}, "single-host"),
    ):
        with pytest.raises(ValidationError, match=named):
            PrepareSpec.model_validate(bad)
