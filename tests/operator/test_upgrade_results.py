"""An upgrade from operators that kept the results in `status.results`: the object written under
the old CRD still carries them when the new CRD and operator arrive. The new operator must not
break on it, must not lose those measurements (it copies them into storage once), and
`kubectl get` must keep working (its printer columns read only the summary)."""

from __future__ import annotations

import asyncio
import copy
import subprocess

from ladder_api import artifacts, storage
from ladder_api.crd import CRD_NAME, crd
from ladder_testing.apiserver.fixture import running_apiserver
from tests.operator.harness import SX, InProcess, results_for, tiny

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def old_crd() -> dict:
    """Today's CRD plus what the old one had: status.results, a list-map keyed by id."""
    old = copy.deepcopy(crd())
    status = old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    status["properties"]["results"] = {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }
    return old


def _install(http, body: dict) -> None:
    _, live = http.get(f"{CRDS}/{CRD_NAME}")
    body = {**body, "metadata": {**body["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}}
    code, out = http.put(f"{CRDS}/{CRD_NAME}", body)
    assert code == 200, out


def test_an_old_status_with_results_is_carried_over_and_kubectl_still_reads_it(tmp_path, bucket):
    with running_apiserver(tmp_path / "api") as api:
        world = InProcess(api, bucket)
        cluster, http = world.cluster, world.cluster.http
        _install(http, old_crd())
        exp = tiny(cluster.ns)
        name = exp["metadata"]["name"]
        uid = cluster.create(exp)["metadata"]["uid"]
        old_results = results_for(32, 600, 200.0)
        status_path = f"{SX}/namespaces/{cluster.ns}/scalingexperiments/{name}/status"
        body = {"apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": name}}
        old_write = {**body, "status": {"results": old_results}}
        code, out = http.apply(status_path, old_write, "ladder-evaluator-c32")
        assert code == 200 and len(out["status"]["results"]) == 4, "the old CRD keeps them"
        code, _ = http.apply(status_path, {**body, "status": {"phase": "Running", "summary": {
            "sizesDone": 0, "sizesTotal": 3, "progress": "0/3", "bestFid": 26.0, "bestWidth": 32}}},
            "ladder-operator")
        assert code == 200

        _install(http, crd())  # the upgrade: new CRD, then the new operator
        assert len(cluster.status(name).get("results") or []) == 4, "still stored until the next write"
        asyncio.run(world.deliver())
        asyncio.run(world.deliver())
        asyncio.run(world.kube.close())

        status = cluster.status(name)
        c32 = next(s for s in status["sizes"] if s["width"] == 32)
        assert c32["measurements"]["recorded"] == 4 and status["summary"]["bestFid"] == 26.0
        prefix = cluster.results_prefix(name, 32)
        assert storage.list_dir(prefix) == [f"0-status-results-{uid}.json"]
        assert {r.id for r in artifacts.read_results(prefix)} == {r["id"] for r in old_results}
        assert "results" not in status, "pruned on the operator's write: the new schema lacks it"

        kubectl = ["kubectl", "--kubeconfig", str(api.kubeconfig), "-n", cluster.ns]
        got = subprocess.run([*kubectl, "get", "sx", name], capture_output=True, text=True, timeout=60)
        assert got.returncode == 0 and name in got.stdout, got.stderr
        got = subprocess.run([*kubectl, "get", "sx", name, "-o", "jsonpath={.status.summary.bestFid} "
                              "{.status.summary.progress} {.status.summary.measured}"],
                             capture_output=True, text=True, timeout=60)
        assert got.returncode == 0 and got.stdout.split() == ["26", "0/3", "4/108"], got.stderr
