"""The generated CRD: structural, in sync with the chart's copy, and accepting what the models do."""

from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml

from ladder_api import status as st
from ladder_api.crd import crd, crd_yaml, open_api_schema, to_json_schema
from ladder_api.loading import load_experiment
from ladder_api.spec import ScalingExperimentSpec
from tests.conftest import EXAMPLES, REPO_ROOT

CHART_CRD = REPO_ROOT / "charts" / "ladder" / "crds" / "scalingexperiments.ladder.dev.yaml"

TYPES = {"object", "array", "string", "integer", "number", "boolean"}
ALLOWED = {
    "type", "description", "format", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "enum",
    "maxProperties", "minProperties", "required", "items", "allOf", "oneOf", "anyOf", "not",
    "properties", "additionalProperties", "nullable", "example", "externalDocs", "title", "default",
    "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-embedded-resource",
    "x-kubernetes-validations",
}
JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
FORBIDDEN_IN_JUNCTORS = {"type", "description", "default", "additionalProperties", "nullable"}


def structural_violations(node: dict, path: str = "") -> list[str]:
    """Kubernetes' structural-schema rules (apiextensions v1), the parts a generator can break."""
    out = []
    unknown = set(node) - ALLOWED
    if unknown:
        out.append(f"{path or '<root>'}: keywords not allowed in a CRD schema: {sorted(unknown)}")
    escapes = node.get("x-kubernetes-preserve-unknown-fields") or node.get("x-kubernetes-int-or-string")
    if node.get("type") not in TYPES and not escapes:
        out.append(f"{path or '<root>'}: no type")
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in node and not isinstance(node[key], bool):
            out.append(f"{path}: {key} must be a boolean in OpenAPI v3.0")
    if node.get("uniqueItems"):
        out.append(f"{path}: uniqueItems: true is not allowed")
    if "properties" in node and "additionalProperties" in node:
        out.append(f"{path}: properties and additionalProperties are mutually exclusive")
    if node.get("additionalProperties") is False:
        out.append(f"{path}: additionalProperties: false is not allowed")
    for junctor in JUNCTORS:
        members = node.get(junctor)
        if members is None:
            continue
        for i, m in enumerate(members if isinstance(members, list) else [members]):
            bad = FORBIDDEN_IN_JUNCTORS & set(m)
            if bad and not node.get("x-kubernetes-int-or-string"):
                out.append(f"{path}.{junctor}[{i}]: sets {sorted(bad)} inside a junctor")
    for name, child in node.get("properties", {}).items():
        out += structural_violations(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        out += structural_violations(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += structural_violations(node["additionalProperties"], f"{path}{{}}")
    if node.get("x-kubernetes-list-type") == "map":
        item = node["items"]
        for key in node.get("x-kubernetes-list-map-keys", []):
            if key not in item.get("required", []):
                out.append(f"{path}: list-map key {key!r} must be required")
    return out


def test_checked_in_crd_matches_the_models():
    assert CHART_CRD.read_text() == crd_yaml(), (
        "charts/ladder/crds/scalingexperiments.ladder.dev.yaml drifted from the models: run `make crd`"
    )


def test_schema_is_structural():
    assert structural_violations(open_api_schema()) == []
    assert "$ref" not in crd_yaml() and "anyOf" not in crd_yaml() and "$defs" not in crd_yaml()


def test_the_checker_catches_pydantic_raw_schema():
    raw = ScalingExperimentSpec.model_json_schema(by_alias=True)
    problems = structural_violations(raw)
    assert any("$defs" in p for p in problems) and any("no type" in p for p in problems)


def test_crd_shape():
    c = crd()
    assert c["metadata"]["name"] == "scalingexperiments.ladder.dev"
    names = c["spec"]["names"]
    assert names["kind"] == "ScalingExperiment" and names["plural"] == "scalingexperiments"
    assert names["shortNames"] == ["sx"]
    (version,) = c["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {col["name"]: col["jsonPath"] for col in version["additionalPrinterColumns"]}
    assert columns == {
        "Phase": ".status.phase",
        "Sizes": ".status.summary.progress",
        "Best FID": ".status.summary.bestFid",
        "Measured": ".status.summary.measured",
        "Age": ".metadata.creationTimestamp",
    }


def test_status_lists_are_keyed_for_server_side_apply():
    status = open_api_schema()["properties"]["status"]["properties"]
    for field, key in (("sizes", "width"), ("conditions", "type")):
        assert status[field]["x-kubernetes-list-type"] == "map"
        assert status[field]["x-kubernetes-list-map-keys"] == [key]
    assert "results" not in status, "results of record live in storage; the status has a digest"


def test_descriptions_and_conversions():
    spec = open_api_schema()["properties"]["spec"]
    ladder = spec["properties"]["ladder"]
    assert ladder["description"].startswith("The model sizes")
    widths = ladder["properties"]["widths"]
    assert widths["items"] == {"type": "integer", "minimum": 0, "exclusiveMinimum": True, "maximum": 8192}
    grad = spec["properties"]["training"]["properties"]["optimizer"]["properties"]["gradClipNorm"]
    assert grad["nullable"] is True and grad["type"] == "number" and "Default: 1.0" in grad["description"]
    kind = spec["properties"]["training"]["properties"]["predictionType"]
    assert kind["enum"] == ["epsilon", "v"] and kind["type"] == "string"
    checkpoints = spec["properties"]["evaluation"]["properties"]["checkpoints"]
    assert checkpoints["x-kubernetes-preserve-unknown-fields"] is True
    assert "final" in checkpoints["description"]


@pytest.fixture(scope="module")
def object_schema():
    return to_json_schema(open_api_schema(), forbid_unknown=True)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_validate_against_the_crd(path, object_schema):
    data = yaml.safe_load(path.read_text())
    jsonschema.validate(data, object_schema)
    # and the defaults-filled wire form too, which is what the operator would write back
    jsonschema.validate(load_experiment(path).to_wire(exclude_none=False), object_schema)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["spec"]["training"].update(predictionType="x0"),
        lambda d: d["spec"]["ladder"].update(widths=[0]),
        lambda d: d["spec"]["training"].update(bogus=1),
        lambda d: d["spec"]["evaluation"].update(samplers="ddim"),
    ],
)
def test_crd_schema_rejects_bad_objects(mutate, object_schema):
    data = yaml.safe_load((EXAMPLES / "paper-v5e.yaml").read_text())
    bad = copy.deepcopy(data)
    mutate(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, object_schema)


def test_a_full_status_validates(object_schema):
    status = st.ScalingExperimentStatus(
        phase=st.ExperimentPhase.running,
        observed_generation=3,
        conditions=[st.Condition(type="Ready", status="False", reason="Training")],
        sizes=[st.SizeStatus(
            width=64, phase=st.SizePhase.evaluating, step=100, total_steps=1000,
            measurements=st.Measurements(recorded=10, expected=288, failed=1, best_fid=25.3),
            evaluator=st.EvaluatorProgress(recorded=11, written_at="2026-01-01T00:00:00Z"),
        )],
        summary=st.Summary(sizes_done=0, sizes_total=11, progress="0/11", best_fid=25.3, best_width=64,
                           measured="10/3168", frontier=[st.FrontierPoint(
                               budget=3.5, width=64, sampler="ddim", steps=50, guidance=7.5, fid=25.3,
                               cost=3.5)]),
        storage_root="gs://b/x",
    )
    obj = {"apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": "x"},
           "spec": {}, "status": status.to_wire(exclude_none=False)}
    jsonschema.validate(obj, object_schema)
