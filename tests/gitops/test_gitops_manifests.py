"""The GitOps examples point at things that exist and carry values the chart accepts.

Argo CD and Flux are not installable here; what can rot silently is checked instead: the paths
and globs an Application or Kustomization syncs, the experiments behind them, the Helm values
they pass (rendered by the real Helm engine), and the links of docs/gitops.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ladder_api.loading import load_experiment
from tests.charts.chart_render import KUBE_VERSION, operator_roles, render

ROOT = Path(__file__).resolve().parents[2]
GITOPS = ROOT / "gitops"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _argo_apps() -> list[dict]:
    docs = [d for p in sorted((GITOPS / "argocd").glob("*.yaml")) for d in _docs(p)]
    return [d for d in docs if d["kind"] == "Application"]


def _flux(kind: str) -> list[dict]:
    return [d for p in sorted((GITOPS / "flux").glob("*.yaml")) for d in _docs(p) if d["kind"] == kind]


def test_argo_cd_applications_sync_paths_that_exist():
    apps = {a["metadata"]["name"]: a for a in _argo_apps()}
    assert set(apps) == {"ladder-platform", "ladder-experiments"}
    for app in apps.values():
        assert app["apiVersion"] == "argoproj.io/v1alpha1"
        assert (ROOT / app["spec"]["source"]["path"]).is_dir()
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
    assert apps["ladder-platform"]["spec"]["source"]["path"] == "charts/ladder"


def test_experiments_application_selects_valid_cluster_experiments():
    (app,) = [a for a in _argo_apps() if a["metadata"]["name"] == "ladder-experiments"]
    source = app["spec"]["source"]
    files = sorted((ROOT / source["path"]).glob(source["directory"]["include"]))
    assert files
    for path in files:
        exp = load_experiment(path)
        assert exp.spec.storage.output_uri.startswith("gs://"), f"{path.name} would write to a pod's disk"


@pytest.mark.parametrize("source", ["argocd", "flux"])
def test_platform_values_render_with_the_chart(source):
    if source == "argocd":
        (app,) = [a for a in _argo_apps() if a["metadata"]["name"] == "ladder-platform"]
        values = app["spec"]["source"]["helm"]["valuesObject"]
        namespace = app["spec"]["destination"]["namespace"]
    else:
        (release,) = _flux("HelmRelease")
        assert (ROOT / release["spec"]["chart"]["spec"]["chart"]).is_dir()
        assert release["spec"]["upgrade"]["crds"] == "CreateReplace"
        values, namespace = release["spec"]["values"], release["metadata"]["namespace"]
    objects = render(values, namespace=namespace)
    for obj in objects:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    (role,) = operator_roles(objects)
    assert role["metadata"]["namespace"] == "ladder"


def test_flux_kustomization_applies_the_experiments_folder():
    (kustomization,) = _flux("Kustomization")
    assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert (ROOT / kustomization["spec"]["path"]).is_dir()
    repos = {r["metadata"]["name"]: r for r in _flux("GitRepository")}
    assert kustomization["spec"]["sourceRef"]["name"] in repos
    assert kustomization["spec"]["prune"] is False


def test_argocd_cm_patch_is_a_valid_config_map():
    (patch,) = _docs(GITOPS / "argocd/argocd-cm-patch.yaml")
    kubernetes_validate.validate(patch, KUBE_VERSION, strict=True)


def test_gitops_doc_links_resolve():
    doc = ROOT / "docs/gitops.md"
    links = re.findall(r"\]\((?!https?://)([^)#]+)\)", doc.read_text())
    assert links
    for link in links:
        assert (doc.parent / link).resolve().exists(), link
