"""Render and lint the chart with the real Helm engine (Helm v4's Go SDK through helm-python-sdk).

`helm_python` binds `libhelm_c`, Helm's own Go packages behind a C ABI, so `render` and `lint`
here are `helm template` and `helm lint`, not a look-alike template engine.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest
import yaml

try:
    import helm_python as helm
except ImportError:  # pragma: no cover - depends on the environment
    # On a developer machine without it, skip; in CI a missing Helm must fail, not pass by skipping.
    if os.environ.get("CI"):
        raise
    pytest.skip("helm-python-sdk (the real Helm engine) is not installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts/ladder"
RELEASE = "ladder"
NAMESPACE = "ladder-system"
KUBE_VERSION = "1.31.0"  # GKE's regular channel; kubernetes-validate ships its schemas


def render(values: dict | None = None, namespace: str = NAMESPACE) -> list[dict]:
    """`helm template RELEASE charts/ladder -n NAMESPACE` as a list of objects, templates only."""
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values or {}, name=RELEASE, namespace=namespace, is_install=True)
    objects = []
    for path, text in sorted(files.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


@cache
def crds() -> tuple[dict, ...]:
    """The CRDs Helm installs from crds/ (as Helm itself loads them)."""
    with helm.Chart.load(CHART) as chart:
        return tuple(doc for f in chart.crds for doc in yaml.safe_load_all(f["data"]) if doc)


def lint(values: dict | None = None) -> dict:
    return helm.lint(CHART, values or {}, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str) -> dict:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def rule_set(rules: list[dict]) -> set[tuple[str, str, str]]:
    """RBAC rules flattened to (apiGroup, resource, verb) triples; resourceNames are kept out."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def crd_reader(objects: list[dict]) -> dict:
    """The ClusterRole that lets kopf list and watch CRDs."""
    (role,) = [r for r in by_kind(objects, "ClusterRole") if r["metadata"]["name"].endswith("-crd-reader")]
    return role


def lease_roles(objects: list[dict]) -> list[dict]:
    """The Role for the leader Lease (none with leader election off)."""
    return [r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith("-leader-election")]


def operator_roles(objects: list[dict]) -> list[dict]:
    """The Role per watched namespace, or the ClusterRole: what the operator may do to experiments
    and their objects."""
    others = [crd_reader(objects), *lease_roles(objects)]
    return [r for r in by_kind(objects, "ClusterRole") + by_kind(objects, "Role") if r not in others]


def bindings_of(objects: list[dict], role: dict) -> list[dict]:
    kind = "ClusterRoleBinding" if role["kind"] == "ClusterRole" else "RoleBinding"
    return [b for b in by_kind(objects, kind) if b["roleRef"]["name"] == role["metadata"]["name"]
            and b["metadata"].get("namespace") == role["metadata"].get("namespace")]
