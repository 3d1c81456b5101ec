"""On a cluster without Kueue: sizes go from Pending to Training, and suspend is the JobSet's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from ladder_testing.apiserver.fixture import running_apiserver
from tests.operator.harness import SX, Cluster, OperatorProcess, tiny, unique_ns, wait_for


@pytest.fixture(scope="module")
def bare_cluster(tmp_path_factory):
    work = Path(tmp_path_factory.mktemp("no-kueue"))
    with running_apiserver(work, without_groups=("kueue.x-k8s.io",)) as api:
        proc = OperatorProcess(api.kubeconfig, work / "operator.log").start()
        try:
            yield api
        finally:
            proc.stop()


def test_sizes_train_and_suspend_without_kueue(bare_cluster):
    cluster = Cluster(bare_cluster.url, unique_ns())
    cluster.create_namespace()
    assert cluster.http.get("/apis/kueue.x-k8s.io")[0] == 404
    exp = tiny(cluster.ns)
    name = exp["metadata"]["name"]
    cluster.create(exp)
    wait_for("training", lambda: cluster.phases(name) == {32: "Training", 64: "Training", 96: "Pending"})
    path = f"{SX}/namespaces/{cluster.ns}/scalingexperiments/{name}"
    cluster.http.merge(path, {"spec": {"suspend": True}})
    wait_for("suspended", lambda: all(j["spec"].get("suspend") for j in cluster.jobsets(name).values()))
    wait_for("phase", lambda: cluster.status(name).get("phase") == "Suspended")
    cluster.http.merge(path, {"spec": {"suspend": False}})
    wait_for("resumed", lambda: not any(j["spec"].get("suspend") for j in cluster.jobsets(name).values()))
    wait_for("training again", lambda: cluster.phases(name)[32] == "Training")
