"""Fixtures every area may use: the repository root, the shared upstream schemas, and validators
for rendered Kubernetes objects (JobSet against its real CRD schema, core kinds with
kubernetes-validate)."""

from __future__ import annotations

import functools
import os
import re
import tempfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
K8S_VERSION = "1.32.0"  # a GKE regular-channel version that kubernetes-validate ships

# Compilation is the dominant cost of the JAX tests. Every JAX process of a session (tests in
# process, trainer and evaluator subprocesses, `ladder run`'s children: they inherit this
# environment) compiles at LLVM's cheapest optimisation level and shares one persistent
# compilation cache per machine, so a program one test or xdist worker compiled is loaded by the
# next. Neither changes what is computed: a cache entry is keyed by the program, its options and
# the JAX version, and LLVM's level changes no floating-point semantics (no fast-math).
JAX_CACHE = os.path.join(tempfile.gettempdir(), f"ladder-test-jax-cache-{os.getuid()}")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", JAX_CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
# Python's bytecode likewise. Where the environment says not to write it (PYTHONDONTWRITEBYTECODE,
# as the development machine and the project's images set; uv installs none), every subprocess
# compiled the source of JAX, Flax, torch and transformers again on import: about a third of the
# CPU of the demo's miniature (tests/demo, six processes). The session's subprocesses share one
# bytecode cache per machine in the temp dir instead; nothing is written into the venv.
PYCACHE = os.path.join(tempfile.gettempdir(), f"ladder-test-pycache-{os.getuid()}")
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    os.environ.setdefault("PYTHONPYCACHEPREFIX", PYCACHE)


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


@functools.cache
def _crd_validator(file_name: str, version: str):
    import jsonschema

    return jsonschema.Draft7Validator(crd_schema(file_name, version))


@functools.cache
def _core_validator(kind: str, api_version: str):
    """kubernetes-validate's strict schema for one kind, compiled once (its own validate() re-reads
    the multi-megabyte definitions file on every call)."""
    import json
    from importlib import resources

    import jsonschema
    from referencing import Registry, Resource

    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schemas = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    folder = schemas / f"v{K8S_VERSION}-local-strict"
    schema = json.loads((folder / f"{kind.lower()}-{group_version}.json").read_text())
    definitions = json.loads((folder / "_definitions.json").read_text())
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_core(obj: dict) -> None:
    """A core Kubernetes object against the strict schema of K8S_VERSION (unknown fields fail)."""
    _core_validator(obj["kind"], obj["apiVersion"]).validate(obj)


def validate_jobset(obj: dict) -> None:
    """Against jobset.x-k8s.io v1alpha2 (unknown fields rejected), and each Job template (with its
    pod template) against batch/v1 Job."""
    _crd_validator("jobset.x-k8s.io_jobsets.yaml", "v1alpha2").validate(obj)
    for rjob in obj["spec"]["replicatedJobs"]:
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{obj['metadata']['name']}-{rjob['name']}-0"},
            "spec": rjob["template"]["spec"],
        }
        validate_core(job)


def validate_manifest(obj: dict) -> None:
    if obj["kind"] == "JobSet":
        validate_jobset(obj)
    else:
        validate_core(obj)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(scope="module")
def gcs():
    """A fake-gcs-server for the module, every client pointed at it (ladder_testing.gcs)."""
    from ladder_testing.gcs import running_gcs

    with running_gcs() as emulator:
        yield emulator
