"""The chart, linted and rendered by the real Helm engine, in namespaced and cluster-wide mode.

Every rendered object is validated against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: unknown fields fail), the RBAC is compared with the exact least-privilege rule set, and the
operator pod is checked against the "restricted" Pod Security Standard.
"""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from tests.charts.chart_render import (
    KUBE_VERSION,
    NAMESPACE,
    bindings_of,
    by_kind,
    crd_reader,
    lease_roles,
    lint,
    one,
    operator_roles,
    render,
    rule_set,
)
from tests.charts.pod_security import restricted_violations

MODES = {
    "namespaced-default": {},
    "namespaced-list": {"watch": {"namespaces": ["research", "ladder-system", "research"]}},
    "cluster-wide": {"watch": {"clusterWide": True}},
    "everything-on": {
        "watch": {"clusterWide": True},
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
        "serviceAccount": {"gcpServiceAccount": "op@p.iam.gserviceaccount.com"},
        "workloads": {"serviceAccount": {"gcpServiceAccount": "runs@p.iam.gserviceaccount.com"}},
        "operator": {"image": {"digest": "sha256:" + "a" * 64}, "nodeSelector": {"pool": "system"},
                     "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                     "priorityClassName": "system-cluster-critical", "imagePullSecrets": ["regcred"],
                     "extraEnv": [{"name": "X", "value": "1"}]},
        "defaults": {"priorityClass": "research-high"},
    },
}

# The least-privilege contract of the operator, one triple per (apiGroup, resource, verb).
EXPECTED_RULES = {
    *{("ladder.dev", "scalingexperiments", v) for v in ("get", "list", "watch", "patch")},
    *{("ladder.dev", "scalingexperiments/status", v) for v in ("get", "patch")},
    *{("jobset.x-k8s.io", "jobsets", v) for v in ("get", "list", "watch", "create", "patch", "delete")},
    *{
        (group, resource, verb)
        for group, resource in (("", "configmaps"), ("", "serviceaccounts"),
                                ("rbac.authorization.k8s.io", "roles"),
                                ("rbac.authorization.k8s.io", "rolebindings"))
        for verb in ("create", "patch")  # server-side apply; never read back, never deleted
    },
    *{("kueue.x-k8s.io", "workloads", v) for v in ("get", "list", "watch", "patch")},
    ("", "events", "create"),
}


@pytest.fixture(scope="module", params=list(MODES), ids=list(MODES))
def mode(request):
    return request.param, MODES[request.param], render(MODES[request.param])


@pytest.mark.parametrize("name", list(MODES))
def test_helm_lint_strict_is_clean(name):
    report = lint(MODES[name])
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error
    assert problems == []


def test_every_rendered_object_validates_against_the_kubernetes_schema(mode):
    _, _, objects = mode
    for obj in objects:
        if obj["kind"] == "ServiceMonitor":  # a prometheus-operator CRD: checked in its own test
            continue
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_kinds_per_mode(mode):
    name, values, objects = mode
    kinds = sorted(o["kind"] for o in objects)
    cluster = values.get("watch", {}).get("clusterWide", False)
    namespaces = 2 if name == "namespaced-list" else 1
    expected = ["ConfigMap", "Deployment", "Service", "ServiceAccount"]
    expected += ["ClusterRole", "ClusterRoleBinding"]  # reading CRDs (kopf) is cluster-scoped in any mode
    expected += ["Role", "RoleBinding"]  # the leader Lease, in the release namespace
    expected += ["ClusterRole", "ClusterRoleBinding"] if cluster else ["Role", "RoleBinding"] * namespaces
    if name == "everything-on":
        expected.append("ServiceMonitor")
    assert kinds == sorted(expected)


def test_rbac_is_exactly_the_least_privilege_set(mode):
    name, values, objects = mode
    roles = operator_roles(objects)
    assert roles
    for role in roles:
        assert rule_set(role["rules"]) == EXPECTED_RULES
        flat = json.dumps(role["rules"])
        assert "*" not in flat
        for forbidden in ("secrets", "pods", "pods/exec", "escalate", "bind", "impersonate", "nodes",
                          "customresourcedefinitions", "namespaces"):
            assert f'"{forbidden}"' not in flat


def test_kopf_may_list_and_watch_crds_in_every_mode_and_nothing_more(mode):
    """Issue 13: without it kopf logs "Not enough permissions" and misses CRDs installed later."""
    _, _, objects = mode
    role = crd_reader(objects)
    assert role["rules"] == [{"apiGroups": ["apiextensions.k8s.io"],
                              "resources": ["customresourcedefinitions"], "verbs": ["list", "watch"]}]
    (binding,) = bindings_of(objects, role)
    assert binding["roleRef"]["kind"] == "ClusterRole"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ladder", "namespace": NAMESPACE}]


def test_the_leader_lease_is_one_named_lease_in_the_release_namespace(mode):
    """Issue 13: two replicas were guarded only by `replicas: 1`. The operator holds a Lease."""
    _, _, objects = mode
    (role,) = lease_roles(objects)
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["ladder-operator"],
         "verbs": ["get", "patch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    (binding,) = bindings_of(objects, role)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ladder", "namespace": NAMESPACE}]
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--lease-name=ladder-operator" in container["args"]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    assert env["POD_NAME"] == "metadata.name" and env["POD_NAMESPACE"] == "metadata.namespace"


def test_two_replicas_need_leader_election():
    import helm_python

    assert one(render({"operator": {"replicas": 2}}), "Deployment")["spec"]["replicas"] == 2
    off = {"operator": {"leaderElection": {"enabled": False}}}
    objects = render(off)
    assert lease_roles(objects) == []
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--no-leader-election" in container["args"]
    with pytest.raises(helm_python.HelmError, match="needs operator.leaderElection.enabled"):
        render({"operator": {"replicas": 2, "leaderElection": {"enabled": False}}})


def test_namespaced_mode_binds_a_role_in_each_watched_namespace_only():
    objects = render(MODES["namespaced-list"])
    roles = {r["metadata"]["namespace"] for r in operator_roles(objects)}
    bindings = [b for r in operator_roles(objects) for b in bindings_of(objects, r)]
    assert roles == {"research", "ladder-system"}
    assert {b["metadata"]["namespace"] for b in bindings} == roles
    for binding in bindings:
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": "ladder-operator"}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ladder", "namespace": NAMESPACE}]
    assert by_kind(objects, "ClusterRole") == [crd_reader(objects)], "nothing cluster-scoped but reading CRDs"
    args = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=research",
                                                                "--namespace=ladder-system"]


def test_default_namespaced_mode_watches_the_release_namespace():
    objects = render({}, namespace="ml")
    assert [r["metadata"]["namespace"] for r in operator_roles(objects)] == ["ml"]
    args = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=ml" in args


def test_cluster_wide_mode_binds_the_cluster_role_to_the_operator():
    objects = render(MODES["cluster-wide"])
    (role,) = operator_roles(objects)
    (binding,) = bindings_of(objects, role)
    assert binding["roleRef"]["kind"] == role["kind"] == "ClusterRole"
    assert role["metadata"]["name"] == "ladder-operator"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ladder", "namespace": NAMESPACE}]
    args = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if a.startswith("--namespace")]  # `ladder operator` then watches all


def test_operator_deployment_runs_one_replica_recreated(mode):
    _, _, objects = mode
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
    (container,) = pod["containers"]
    assert container["command"] == ["ladder", "operator"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9090}
    # Liveness asks the endpoint the operator's event loop answers itself (a stuck loop restarts).
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert "--metrics-port=9090" in container["args"]


def test_operator_args_parse_with_the_real_cli():
    """Every argument the chart passes must be one `ladder operator` accepts, with the meaning meant."""
    from ladder_cli.main import build_parser

    for name, values in MODES.items():
        container = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
        args = build_parser().parse_args(container["command"][1:] + container["args"])
        assert args.metrics_port == 9090, name
        expected = [] if values.get("watch", {}).get("clusterWide") else (
            ["research", "ladder-system"] if name == "namespaced-list" else [NAMESPACE])
        assert args.namespace == expected, name
        assert (args.leader_election, args.lease_name, args.lease_duration) == (True, "ladder-operator", 15.0)
    container = one(render({"operator": {"verbose": True}}), "Deployment")["spec"]["template"]["spec"]
    assert build_parser().parse_args(["operator", *container["containers"][0]["args"]]).verbose is True


def test_operator_pod_meets_the_restricted_pod_security_standard(mode):
    _, _, objects = mode
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert writable == {"/tmp"}
    assert "emptyDir" in volumes["tmp"]


def test_metrics_service_selects_the_operator_pod(mode):
    _, _, objects = mode
    service = one(objects, "Service")
    labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics",
                                         "protocol": "TCP"}]


def test_service_monitor_scrapes_the_metrics_port():
    objects = render(MODES["everything-on"])
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"] == one(objects, "Service")["spec"]["selector"]
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s",
                                             "scrapeTimeout": "10s"}]
    assert not by_kind(render({}), "ServiceMonitor")


def test_service_monitor_without_service_is_refused():
    import helm_python

    with pytest.raises(helm_python.HelmError, match="metrics.service.enabled"):
        render({"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}})


def test_workload_identity_annotations():
    objects = render(MODES["everything-on"])
    sa = one(objects, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "op@p.iam.gserviceaccount.com"}
    defaults = json.loads(one(objects, "ConfigMap")["data"]["defaults.json"])
    assert defaults["workloads"]["gcpServiceAccount"] == "runs@p.iam.gserviceaccount.com"
    assert defaults["workloads"]["serviceAccountAnnotations"] == {}
    assert "annotations" not in one(render({}), "ServiceAccount")["metadata"]


def test_operator_defaults_carry_images_queue_priority_and_bucket():
    values = {
        "images": {"trainer": {"repository": "r/t", "tag": "1.2.3", "digest": "sha256:" + "b" * 64},
                   "evaluator": {"repository": "r/e"}},
        "defaults": {"queue": "tpu-v5e", "priorityClass": "high", "outputUri": "gs://b/p/",
                     "costEstimate": {"pricePerChipHour": 1.5}},
        "workloads": {"nodeSelector": {"pool": "tpu"}, "tolerations": [{"key": "k", "operator": "Exists"}]},
    }
    defaults = json.loads(one(render(values), "ConfigMap")["data"]["defaults.json"])
    assert defaults == {
        "images": {"trainer": "r/t:1.2.3@sha256:" + "b" * 64, "evaluator": "r/e:0.1.0",
                   "pullPolicy": "IfNotPresent"},
        "queue": "tpu-v5e",
        "priorityClass": "high",
        "outputUri": "gs://b/p/",
        "costEstimate": {"trainMfu": 0.45, "evalMfu": 0.4, "pricePerChipHour": 1.5},
        "workloads": {"gcpServiceAccount": None, "serviceAccountAnnotations": {},
                      "nodeSelector": {"pool": "tpu"}, "tolerations": [{"key": "k", "operator": "Exists"}]},
        "policy": {"allowedImageRepositories": [], "allowedStoragePrefixes": [],
                   "allowedGcpServiceAccounts": []},
    }
    assert json.loads(one(render({}), "ConfigMap")["data"]["defaults.json"])["priorityClass"] is None


def test_the_charts_cost_assumptions_are_the_estimates_defaults():
    from ladder_api.estimate import Assumptions
    from ladder_operator.defaults import SiteDefaults

    site = SiteDefaults.from_json(json.loads(one(render({}), "ConfigMap")["data"]["defaults.json"]))
    assert site.cost == Assumptions()


def test_a_defaults_change_restarts_the_operator():
    def checksum(values):
        template = one(render(values), "Deployment")["spec"]["template"]
        return template["metadata"]["annotations"]["checksum/defaults"]

    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"defaults": {"queue": "other"}})


def test_image_references():
    deployment = one(render(MODES["everything-on"]), "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/ladder-dev/ladder-operator:0.1.0@sha256:" + "a" * 64
    import helm_python

    with pytest.raises(helm_python.HelmError, match="/operator/image/digest"):
        render({"operator": {"image": {"digest": "deadbeef"}}})


@pytest.mark.parametrize("values, where", [
    ({"watch": {"clusterwide": True}}, "/watch"),  # a misspelt key is an error, not a no-op
    ({"images": {"trainer": {"digest": "sha256:abc"}}}, "/images/trainer/digest"),
    ({"defaults": {"outputUri": "s3://bucket/"}}, "/defaults/outputUri"),
    ({"defaults": {"outputUri": "/data/ladder"}}, "/defaults/outputUri"),  # pods write only to gs://
    ({"policy": {"allowedStoragePrefixes": ["/data"]}}, "/policy/allowedStoragePrefixes"),
    ({"policy": {"allowedImages": ["ghcr.io/x/"]}}, "/policy"),
    ({"workloads": {"serviceAccount": {"gcpServiceAccount": "runs"}}}, "gcpServiceAccount"),
])
def test_values_schema_refuses_bad_values(values, where):
    import helm_python

    with pytest.raises(helm_python.HelmError, match=where):
        render(values)
    assert any(where in e for e in lint(values)["errors"])


def test_existing_service_account_and_no_rbac():
    """Platforms that manage identities and RBAC themselves: the chart then creates neither."""
    values = {"serviceAccount": {"create": False, "name": "platform-ladder"}, "rbac": {"create": False}}
    objects = render(values)
    assert not [o for o in objects if o["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                                                     "ClusterRoleBinding")]
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "platform-ladder"
    import helm_python

    with pytest.raises(helm_python.HelmError, match="serviceAccount.name is required"):
        render({"serviceAccount": {"create": False}})
