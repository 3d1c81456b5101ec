"""The chart's allowlists, rendered by the real Helm engine, enforced by the real operator process
(against the local API server): values -> defaults.json -> `ladder operator` -> Invalid."""

from __future__ import annotations

import json
import os

import pytest

from ladder_testing.apiserver.fixture import running_apiserver
from tests.charts.chart_render import one, render
from tests.operator.harness import Cluster, OperatorProcess, tiny, unique_ns, wait_for, with_changes

POLICY = {
    "allowedImageRepositories": ["ghcr.io/ladder-dev/"],
    "allowedStoragePrefixes": ["gs://ladder-experiments/"],
    "allowedGcpServiceAccounts": ["runs@p.iam.gserviceaccount.com"],
}


@pytest.fixture
def cluster_with_chart_policy(tmp_path):
    if os.environ.get("LADDER_TEST_KUBECONFIG"):
        pytest.skip("drives the local API server")
    values = {"policy": POLICY, "workloads": {"serviceAccount": {"gcpServiceAccount": POLICY[
        "allowedGcpServiceAccounts"][0]}}}
    defaults = one(render(values), "ConfigMap")["data"]["defaults.json"]
    assert json.loads(defaults)["policy"] == POLICY
    (tmp_path / "defaults.json").write_text(defaults)
    with running_apiserver(tmp_path / "api") as api:
        proc = OperatorProcess(api.kubeconfig, tmp_path / "operator.log",
                               env={"LADDER_OPERATOR_DEFAULTS": str(tmp_path / "defaults.json")}).start()
        try:
            c = Cluster(api.url, unique_ns())
            c.create_namespace()
            yield c, proc
        finally:
            proc.stop()


def test_the_operator_enforces_the_charts_allowlists(cluster_with_chart_policy):
    cluster, proc = cluster_with_chart_policy
    inside = with_changes(tiny(cluster.ns, "inside"), **{"storage.outputUri": "gs://ladder-experiments/team/"})
    outside = with_changes(tiny(cluster.ns, "outside"), **{
        "storage.outputUri": "gs://someone-else/", "training.checkpoint.retention": "delete",
        "resources.images": {"trainer": "docker.io/miner/xmr:1"}})
    cluster.create(outside)
    cluster.create(inside)
    wait_for("inside starts", lambda: len(cluster.jobsets("inside")) == 2, timeout=60)
    wait_for("outside Invalid", lambda: cluster.status("outside").get("phase") == "Invalid", timeout=60)
    message = cluster.status("outside")["message"]
    assert "spec.storage.outputUri: gs://someone-else/ is outside this cluster's allowed storage prefixes " \
           "(gs://ladder-experiments/)" in message, proc.log()
    assert "spec.resources.images.trainer: docker.io/miner/xmr:1 (repository docker.io/miner/xmr) is not " \
           "in this cluster's allowed image repositories (ghcr.io/ladder-dev/)" in message
    assert cluster.jobsets("outside") == {}
    assert not cluster.experiment("outside")["metadata"].get("finalizers"), "no cleanup outside the list"
