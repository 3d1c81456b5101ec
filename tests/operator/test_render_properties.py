"""Property-based: any valid spec renders to valid objects; any broken one is rejected by name."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ladder_api.errors import SpecError
from ladder_api.loading import parse_experiment
from ladder_api.plan import expand
from ladder_api.spec import ScalingExperimentSpec
from ladder_api.tpu import SLICES
from ladder_operator.render import render
from tests.conftest import validate_manifest

NAME = st.from_regex(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?", fullmatch=True)
LABEL = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True)
SINGLE_HOST = sorted(n for n, s in SLICES.items() if s.hosts == 1)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def slice_request(draw, names=tuple(sorted(SLICES))):
    name = draw(st.sampled_from(names))
    out = {"sliceType": name, "numSlices": draw(st.integers(1, 3))}
    if draw(st.booleans()):
        chips = SLICES[name].chips
        out["sharding"] = {"fsdp": draw(st.sampled_from([d for d in range(1, chips + 1) if chips % d == 0]))}
    if draw(st.booleans()):
        quantity = st.sampled_from(["1", "7500m", "100", "0.5", "160Gi", "512Mi", "1T"])
        out["podResources"] = draw(st.fixed_dictionaries({}, optional={"cpu": quantity, "memory": quantity}))
    return out


@st.composite
def valid_document(draw) -> dict:
    groups = draw(st.sampled_from([8, 16, 32]))
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    mult = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    levels = draw(st.lists(st.integers(0, len(mult) - 1), unique=True, max_size=len(mult)))
    unit = math.lcm(groups, heads)
    widths = draw(st.lists(st.integers(1, 24).map(lambda k: k * unit), min_size=1, max_size=5, unique=True))
    rules = draw(st.lists(slice_request(), min_size=1, max_size=3))
    bounds = sorted(draw(st.lists(st.integers(1, 800), min_size=len(rules) - 1, max_size=len(rules) - 1)))
    for rule, bound in zip(rules, bounds, strict=False):
        rule["maxWidth"] = bound
    resources: dict = {
        "slices": rules,
        "evalSlice": {"sliceType": draw(st.sampled_from(SINGLE_HOST))},
    }
    if draw(st.booleans()):
        resources["overrides"] = {str(draw(st.sampled_from(widths))): draw(slice_request())}
    if draw(st.booleans()):
        resources["gcpServiceAccount"] = f"{draw(NAME)}x@{draw(LABEL)}.iam.gserviceaccount.com"
    if draw(st.booleans()):
        resources["hostNetwork"] = True
    order = draw(st.sampled_from(["ascending", "descending", "as-listed"]))
    scheduling = {"queue": draw(LABEL), "order": order}
    if draw(st.booleans()):
        scheduling["priorityClass"] = draw(LABEL)
    metadata = {"name": draw(NAME), "namespace": draw(LABEL)}
    if draw(st.booleans()):
        metadata["uid"] = str(draw(st.uuids()))
    return {
        "apiVersion": "ladder.dev/v1alpha1",
        "kind": "ScalingExperiment",
        "metadata": metadata,
        "spec": {
            "ladder": {
                "widths": widths,
                "channelMult": mult,
                "attentionLevels": levels,
                "normGroups": groups,
                "numHeads": heads,
                "latentSize": 2 ** (len(mult) - 1) * draw(st.integers(1, 8)),
                "contextDim": draw(st.integers(1, 2048)),
            },
            "training": {"steps": draw(st.integers(1, 10**6)), "lrSchedule": {"warmupSteps": 0}},
            "evaluation": {
                # at most 4 listed steps: with 5 widths and the default grid that stays inside the
                # replicates one experiment may record (ladder_api.limits), which validation refuses
                # past (hypothesis once drew 40 steps: 4.1M replicates, a SpecError, not a valid spec)
                "checkpoints": draw(st.one_of(st.sampled_from(["final", "all"]),
                                              st.lists(st.integers(1, 10**6), min_size=1, max_size=4)))
            },
            "resources": resources,
            "scheduling": scheduling,
            "suspend": draw(st.booleans()),
        },
    }


@SETTINGS
@given(valid_document())
def test_valid_specs_always_render_valid_objects(document):
    plan = expand(parse_experiment(document))
    manifests = render(plan)
    jobsets = [m for m in manifests if m["kind"] == "JobSet"]
    assert len(jobsets) == 2 * len(document["spec"]["ladder"]["widths"])
    for m in manifests:
        assert len(m["metadata"]["name"]) <= 63
        validate_manifest(m)
    assert manifests == render(expand(parse_experiment(document)))  # pure: same input, same objects


def _set(document: dict, path: tuple, value) -> None:
    node = document
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


SECTIONS = ["ladder", "data", "training", "resources", "scheduling", "evaluation", "storage", "local"]


@st.composite
def broken_document(draw) -> tuple[dict, str]:
    """A valid document with one mistake, and the field path the error must name."""
    document = draw(valid_document())
    spec = document["spec"]
    kind = draw(
        st.sampled_from(
            ["unknown-field", "slice-type", "width", "steps", "enum", "type", "name", "eval-slice",
             "quantity", "k8s-name", "image"]
        )
    )
    if kind == "unknown-field":
        section = draw(st.sampled_from(SECTIONS))
        field = draw(st.from_regex(r"[a-z][A-Za-z]{2,12}", fullmatch=True).filter(lambda f: f != "kind"))
        model = ScalingExperimentSpec.model_fields[section].annotation
        if field in {f.alias or n for n, f in model.model_fields.items()} | set(model.model_fields):
            field = field + "Typo"
        _set(document, ("spec", section, field), 1)
        return document, f"spec.{section}.{field}"
    if kind == "slice-type":
        bad = draw(
            st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12).filter(
                lambda s: s not in SLICES
            )
        )
        i = draw(st.integers(0, len(spec["resources"]["slices"]) - 1))
        spec["resources"]["slices"][i]["sliceType"] = bad
        return document, f"spec.resources.slices[{i}].sliceType"
    if kind == "width":
        odd = 2 * draw(st.integers(0, 200)) + 1  # never divisible by normGroups (>= 8) x mult (<= 4)
        spec["ladder"]["widths"] = [w for w in spec["ladder"]["widths"] if w != odd] + [odd]
        spec["resources"].pop("overrides", None)
        return document, "spec.ladder.widths"
    if kind == "steps":
        spec["training"]["steps"] = draw(st.integers(-(10**6), 0))
        return document, "spec.training.steps"
    if kind == "enum":
        value = draw(st.text(min_size=1, max_size=8).filter(lambda s: s not in ("epsilon", "v")))
        spec["training"]["predictionType"] = value
        return document, "spec.training.predictionType"
    if kind == "type":
        spec.setdefault("evaluation", {})["numSamples"] = draw(st.sampled_from(["many", [1], {"n": 1}, None]))
        return document, "spec.evaluation.numSamples"
    if kind == "quantity":
        field = draw(st.sampled_from(["cpu", "memory"]))
        bad = draw(st.sampled_from(["lots", "1.5 Gi", "-2", "G"]))
        spec["resources"]["evalSlice"]["podResources"] = {field: bad}
        return document, f"spec.resources.evalSlice.podResources.{field}"
    if kind == "k8s-name":  # names Kubernetes refuses (issue 13)
        field = draw(st.sampled_from(["queue", "priorityClass"]))
        bad = draw(st.sampled_from(["bad queue/../", "Upper", "a" * 64, "x_y", "-a", ""]))
        spec["scheduling"][field] = bad
        return document, f"spec.scheduling.{field}"
    if kind == "image":
        bad = draw(st.sampled_from(["r/t:1\n", "r/T:1", "r/t t:1", "r/t:", "r/t@sha256:12"]))
        spec["resources"]["images"] = {"trainer": bad}
        return document, "spec.resources.images.trainer"
    if kind == "name":
        document["metadata"]["name"] = draw(st.sampled_from(["Upper", "9lives", "a" * 41, "x_y", "-a", ""]))
        return document, "metadata.name"
    spec["resources"]["evalSlice"] = {
        "sliceType": draw(st.sampled_from(sorted(n for n, s in SLICES.items() if s.hosts > 1)))
    }
    return document, "spec.resources.evalSlice"


@SETTINGS
@given(broken_document())
def test_broken_specs_are_rejected_naming_the_field(case):
    document, path = case
    with pytest.raises(SpecError) as info:
        parse_experiment(document, "f.yaml")
    problems = info.value.problems
    assert any(p.startswith(f"{path}: ") or p.startswith(f"{path}[") for p in problems), problems
    assert all(": " in p and "\n" not in p for p in problems)
