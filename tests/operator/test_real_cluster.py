"""The operator against a real cluster (kind with JobSet installed), when LADDER_TEST_KUBECONFIG
points at one; skipped otherwise. Only what a real cluster decides on its own is asserted: the
JobSets appear, at most maxConcurrent, owned by the experiment, and the status is filled."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.operator.harness import OperatorProcess, load_example, wait_for

KUBECONFIG = os.environ.get("LADDER_TEST_KUBECONFIG")
pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="set LADDER_TEST_KUBECONFIG to run against a cluster")


def test_quickstart_on_a_real_cluster(tmp_path: Path):
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=KUBECONFIG)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = f"ladder-test-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    proc = OperatorProcess(Path(KUBECONFIG), tmp_path / "operator.log", ["--namespace", ns]).start()
    try:
        exp = load_example("quickstart.yaml", ns)
        custom.create_namespaced_custom_object("ladder.dev", "v1alpha1", ns, "scalingexperiments", exp)

        def jobsets():
            items = custom.list_namespaced_custom_object("jobset.x-k8s.io", "v1alpha2", ns, "jobsets")[
                "items"
            ]
            return {j["metadata"]["name"]: j for j in items}

        wait_for("JobSets", lambda: len(jobsets()) == 2, timeout=120, interval=1)
        owner = custom.get_namespaced_custom_object(
            "ladder.dev", "v1alpha1", ns, "scalingexperiments", "quickstart"
        )
        assert all(
            j["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"] for j in jobsets().values()
        )
        wait_for(
            "status",
            lambda: (
                custom.get_namespaced_custom_object(
                    "ladder.dev", "v1alpha1", ns, "scalingexperiments", "quickstart"
                ).get("status")
                or {}
            ).get("sizes"),
            timeout=60,
            interval=1,
        )
    finally:
        proc.stop()
        core.delete_namespace(ns)
