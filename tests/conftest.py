"""Fixtures every area may use: the repository root, the shared upstream schemas, and validators
for rendered Kubernetes objects (JobSet against its real CRD schema, core kinds with
kubernetes-validate)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
K8S_VERSION = "1.32.0"  # GKE's regular channel at the time of writing; kubernetes-validate ships it


def shared_dir() -> Path:
    """`<repo>/../shared` (CI copies shared/ beside the clone), or $LADDER_SHARED_DIR."""
    candidates = [Path(os.environ["LADDER_SHARED_DIR"])] if os.environ.get("LADDER_SHARED_DIR") else []
    candidates.append(REPO_ROOT.parent / "shared")
    for c in candidates:
        if (c / "schemas").is_dir():
            return c
    pytest.fail(
        "upstream schemas not found: expected shared/schemas/ beside the repository "
        f"({REPO_ROOT.parent / 'shared'}) or LADDER_SHARED_DIR pointing at a shared/ directory"
    )


@functools.cache
def crd_schema(file_name: str, version: str, forbid_unknown: bool = True) -> dict:
    """The openAPIV3Schema of one served version of an upstream CRD, as JSON Schema."""
    from ladder_api.crd import to_json_schema

    crd = yaml.safe_load((shared_dir() / "schemas" / file_name).read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return to_json_schema(v["schema"]["openAPIV3Schema"], forbid_unknown=forbid_unknown)
    raise KeyError(f"{file_name} does not serve {version}")


def validate_jobset(obj: dict) -> None:
    """Against jobset.x-k8s.io v1alpha2 (unknown fields rejected), and each Job template (with its
    pod template) against batch/v1 Job with kubernetes-validate."""
    import jsonschema
    import kubernetes_validate

    jsonschema.validate(obj, crd_schema("jobset.x-k8s.io_jobsets.yaml", "v1alpha2"))
    for rjob in obj["spec"]["replicatedJobs"]:
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{obj['metadata']['name']}-{rjob['name']}-0"},
            "spec": rjob["template"]["spec"],
        }
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def validate_manifest(obj: dict) -> None:
    import kubernetes_validate

    if obj["kind"] == "JobSet":
        validate_jobset(obj)
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES
