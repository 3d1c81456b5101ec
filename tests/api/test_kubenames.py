"""Names Kubernetes refuses are refused at the spec, naming the field; the CRD says the same.

Issue 13: a serviceAccount "Default SA!", a queue "bad queue/../", an upper-case priority class and
an image with a newline were rendered, and the API server's 422 was retried forever (or the pods
failed after TPU admission).
"""

from __future__ import annotations

import jsonschema
import pytest
from pydantic import ValidationError

from ladder_api import kubenames as kn
from ladder_api.crd import open_api_schema, to_json_schema
from ladder_api.errors import describe
from ladder_api.spec import ScalingExperiment

GOOD_IMAGES = [
    "ghcr.io/ladder-dev/ladder-trainer:0.1.0",
    "ghcr.io/ladder-dev/ladder-trainer:0.1.0@sha256:" + "a" * 64,
    "us-docker.pkg.dev/my-proj/ladder/trainer@sha256:" + "0" * 64,
    "localhost:5000/trainer",
    "busybox",
    "library/busybox:1.36",
    "registry.example.com:443/a/b__c/d-e.f:v1_2.3-rc",
]
BAD_IMAGES = [
    "ghcr.io/ladder-dev/ladder-trainer:0.1.0\n",
    "ghcr.io/ladder-dev/ladder trainer:1",
    "ghcr.io/Ladder-Dev/trainer:1",
    "Trainer:1",
    "ghcr.io/a/b:",
    "ghcr.io/a/b@sha256:abc",
    "ghcr.io/a/../b:1",
    "",
    "ghcr.io/" + "a" * 260 + ":1",
]


@pytest.mark.parametrize("ref", GOOD_IMAGES)
def test_good_image_references(ref):
    assert kn.image_problem(ref) is None


@pytest.mark.parametrize("ref", BAD_IMAGES)
def test_bad_image_references(ref):
    assert kn.image_problem(ref)


@pytest.mark.parametrize(("ref", "repository"), [
    ("busybox", "docker.io/library/busybox"),
    ("busybox:1.36", "docker.io/library/busybox"),
    ("team/tool:2", "docker.io/team/tool"),
    ("index.docker.io/team/tool", "docker.io/team/tool"),
    ("ghcr.io/ladder-dev/ladder-trainer:0.1.0@sha256:" + "a" * 64, "ghcr.io/ladder-dev/ladder-trainer"),
    ("localhost:5000/trainer:1", "localhost:5000/trainer"),
    ("localhost/trainer", "localhost/trainer"),
])
def test_image_repository_is_what_the_registry_sees(ref, repository):
    assert kn.image_repository(ref) == repository


@pytest.mark.parametrize(("value", "ok"), [
    ("ladder", True), ("tpu-v5e.research", True), ("a" * 63, True),
    ("bad queue/../", False), ("High", False), ("-x", False), ("x-", False), ("a" * 64, False), ("", False),
])
def test_object_names_that_are_also_label_values(value, ok):
    assert (kn.dns1123_subdomain_problem(value, kn.LABEL_MAX) is None) is ok


@pytest.mark.parametrize(("value", "ok"), [
    ("runs@my-project.iam.gserviceaccount.com", True),
    ("123456789-compute@developer.gserviceaccount.com", True),
    ("runs", False), ("runs@example.com", False), ("runs @p.iam.gserviceaccount.com", False),
    ("Runs@p.iam.gserviceaccount.com", False),
])
def test_gcp_service_accounts(value, ok):
    assert (kn.gcp_service_account_problem(value) is None) is ok


def _spec(**sections) -> dict:
    return {"apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment",
            "metadata": {"name": "names"}, "spec": sections}


ISSUE_CASES = [
    ({"scheduling": {"queue": "bad queue/../"}}, "scheduling.queue"),
    ({"scheduling": {"priorityClass": "Research-High"}}, "scheduling.priorityClass"),
    ({"resources": {"images": {"trainer": "ghcr.io/x/trainer:1\n"}}}, "resources.images.trainer"),
    ({"resources": {"images": {"evaluator": "ghcr.io/x/Evaluator:1"}}}, "resources.images.evaluator"),
    ({"resources": {"gcpServiceAccount": "runs@example.com"}}, "resources.gcpServiceAccount"),
]


@pytest.mark.parametrize(("spec", "field"), ISSUE_CASES, ids=[f for _, f in ISSUE_CASES])
def test_the_spec_names_the_field_and_the_crd_refuses_it_too(spec, field):
    with pytest.raises(ValidationError) as err:
        ScalingExperiment.model_validate(_spec(**spec))
    (line,) = describe(err.value)
    assert line.startswith(f"spec.{field}: ")
    if "\\n" in repr(spec):
        return  # Python's `$` matches before a final newline (jsonschema here); Go's does not
    schema = to_json_schema(open_api_schema()["properties"]["spec"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(spec, schema)


def test_good_names_pass_both_the_spec_and_the_crd():
    spec = {"scheduling": {"queue": "tpu-v5e", "priorityClass": "research-high"},
            "resources": {"images": {"trainer": GOOD_IMAGES[1], "evaluator": GOOD_IMAGES[3]},
                          "gcpServiceAccount": "runs@p.iam.gserviceaccount.com"}}
    ScalingExperiment.model_validate(_spec(**spec))
    jsonschema.validate(spec, to_json_schema(open_api_schema()["properties"]["spec"]))


def test_a_shared_service_account_is_refused_with_what_to_do_instead():
    """Issue 13 (security): pods of experiments sharing a ServiceAccount could patch each other's
    status. "Default SA!" was also a name Kubernetes refuses."""
    for value in ("Default SA!", "ladder-workload"):
        with pytest.raises(ValidationError) as err:
            ScalingExperiment.model_validate(_spec(resources={"serviceAccount": value}))
        (line,) = describe(err.value)
        assert line.startswith("spec.resources.serviceAccount: ")
        assert "resources.gcpServiceAccount" in line and "own ServiceAccount" in line
