"""What the chart promises to the other parts of Ladder and to its users.

- It ships the generated CRD from crds/ (Helm installs it on first install), valid for the API
  server.
- The operator holds every permission that the per-experiment Role it creates grants (Kubernetes
  refuses to create a Role with more than its creator holds, unless it may `escalate`), and may
  create every kind of object an experiment renders into.
- Rendered workload pods meet the same "restricted" Pod Security Standard as the operator.
- Every value is documented and the README's values table is the generated one.
"""

from __future__ import annotations

import copy
import importlib.util
import shlex
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ladder_api import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from ladder_api.loading import load_experiment
from ladder_api.plan import expand
from tests.charts.chart_render import (
    CHART,
    KUBE_VERSION,
    ROOT,
    by_kind,
    crds,
    operator_roles,
    render,
    rule_set,
)
from tests.charts.pod_security import restricted_violations

# Plural resource and API group of each kind an experiment renders into.
RESOURCE_OF_KIND = {
    "JobSet": ("jobset.x-k8s.io", "jobsets"),
    "ConfigMap": ("", "configmaps"),
    "ServiceAccount": ("", "serviceaccounts"),
    "Role": ("rbac.authorization.k8s.io", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
}
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def _values_table():
    spec = importlib.util.spec_from_file_location("values_table", CHART / "hack/values_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("values_table", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _experiment_objects(path: Path) -> list[dict]:
    from ladder_operator.render import render as render_experiment

    return render_experiment(expand(load_experiment(path)))


def test_chart_ships_the_crd_from_crds_dir():
    (crd,) = crds()
    kubernetes_validate.validate(crd, KUBE_VERSION, strict=True)
    assert crd["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["singular"]) == (KIND, PLURAL, SINGULAR)
    assert names["shortNames"] == SHORT_NAMES
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    assert version["name"] == VERSION and version["served"]
    assert version["subresources"] == {"status": {}}
    # Templates never carry the CRD: Helm would then delete it (and every experiment) on uninstall.
    assert not by_kind(render({"watch": {"clusterWide": True}}), "CustomResourceDefinition")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_operator_holds_every_permission_it_grants_and_creates(path):
    (operator_role,) = operator_roles(render({}))
    granted = rule_set(operator_role["rules"])
    objects = _experiment_objects(path)
    for obj in objects:
        group, resource = RESOURCE_OF_KIND[obj["kind"]]
        assert {(group, resource, v) for v in ("create", "patch")} <= granted, obj["kind"]
    roles = by_kind(objects, "Role")
    assert roles
    for role in roles:
        missing = rule_set(role["rules"]) - granted
        assert not missing, f"the operator cannot create Role {role['metadata']['name']}: lacks {missing}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_rendered_workload_pods_meet_the_restricted_standard(path):
    for obj in _experiment_objects(path):
        if obj["kind"] != "JobSet":
            continue
        for job in obj["spec"]["replicatedJobs"]:
            pod = job["template"]["spec"]["template"]["spec"]
            assert restricted_violations(pod) == [], obj["metadata"]["name"]


def test_restricted_check_catches_violations():
    pod = {"securityContext": {}, "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
           "containers": [{"name": "c", "securityContext": {"privileged": True}}]}
    found = "\n".join(restricted_violations(pod))
    for needle in ("hostPath", "privileged", "allowPrivilegeEscalation", "drop ALL", "runAsNonRoot",
                   "seccompProfile"):
        assert needle in found


def test_readme_values_table_is_fresh():
    module = _values_table()
    readme = (CHART / "README.md").read_text()
    assert module.render_readme(readme) == readme, "run: python charts/ladder/hack/values_table.py"


def test_every_value_is_documented_and_an_undocumented_one_is_caught(tmp_path):
    module = _values_table()
    rows = module.rows()
    keys = {r.key for r in rows}
    assert {"images.trainer.digest", "defaults.queue", "defaults.priorityClass", "defaults.outputUri",
            "serviceAccount.gcpServiceAccount", "operator.resources", "operator.nodeSelector",
            "operator.tolerations", "watch.clusterWide"} <= keys
    assert all(r.description for r in rows)
    text = (CHART / "values.yaml").read_text() + "\nextra:\n  # -- documented\n  ok: 1\n  missing: 2\n"
    bad = tmp_path / "values.yaml"
    bad.write_text(text)
    with pytest.raises(ValueError, match="extra.missing"):
        module.rows(bad)


def test_values_schema_knows_every_value():
    """values.schema.json closes each object; a value missing from it would fail every install."""
    import json

    import yaml

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(value, node, path):
        if node.get("additionalProperties", True) is not False:
            return  # a free-form Kubernetes field (resources, nodeSelector, ...)
        for key, sub in value.items():
            assert key in node["properties"], f"{path}{key} is not in values.schema.json"
            if isinstance(sub, dict):
                walk(sub, node["properties"][key], f"{path}{key}.")

    walk(values, schema, "")


def _documented_crd_upgrade() -> list[str]:
    """The `kubectl apply` command the chart README gives for CRD upgrades, as argv."""
    lines = (CHART / "README.md").read_text().splitlines()
    (line,) = [ln for ln in lines if ln.startswith("kubectl apply") and ln.endswith("/crds/")]
    return shlex.split(line)


def test_documented_crd_upgrade_takes_over_helms_crd_and_keeps_experiments(tmp_path):
    """Helm never upgrades crds/, so the README's kubectl command does, run here as kubectl sends
    it against the local API server (server-side apply with Kubernetes' field ownership): over an
    older CRD that Helm created, experiments survive and a field the old schema pruned is kept."""
    from ladder_testing.apiserver.client import Http
    from ladder_testing.apiserver.fixture import running_apiserver

    argv = _documented_crd_upgrade()
    assert argv[:3] == ["kubectl", "apply", "--server-side"] and argv[-2] == "-f"
    (new,) = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / argv[-1]).glob("*.yaml"))]
    assert new == crds()[0]  # what the README applies is what the chart ships
    old = copy.deepcopy(new)  # the previous chart's CRD: evaluation.seed did not exist yet
    (version,) = old["spec"]["versions"]
    spec_schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    del spec_schema["properties"]["evaluation"]["properties"]["seed"]

    crd_path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{PLURAL}.{GROUP}"
    sx = f"/apis/{GROUP}/{VERSION}/namespaces/default/{PLURAL}"
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "spec": {"evaluation": {"seed": 3}}}
    with running_apiserver(tmp_path) as api:
        http = Http(api.url)
        assert http.delete(crd_path)[0] == 200  # the server starts with the current CRD
        assert http.request("POST", crd_path.rsplit("/", 1)[0] + "?fieldManager=helm", old)[0] == 201
        assert http.post(sx, {**body, "metadata": {"name": "before"}})[0] == 201
        assert http.get(f"{sx}/before")[1]["spec"]["evaluation"] == {}  # pruned by the old schema

        code, rsp = http.apply(crd_path, new, "kubectl", force=False)
        assert code == 409 and 'conflict with "helm"' in rsp["message"]  # why the flag is needed
        code, _ = http.apply(crd_path, new, "kubectl", force="--force-conflicts" in argv)
        assert code == 200

        assert http.get(f"{sx}/before")[0] == 200
        assert http.post(sx, {**body, "metadata": {"name": "after"}})[0] == 201
        assert http.get(f"{sx}/after")[1]["spec"]["evaluation"] == {"seed": 3}
