"""Controller.resync against the local API server: after a relist the caches say what the LISTs
say (issue 13: a JobSet deleted while the watch was away stayed in the cache), but an entry newer
than the LIST (the operator's own write, answered after the LIST was served) is kept."""

from __future__ import annotations

import asyncio

from ladder_kube.aio import AsyncClient
from ladder_kube.client import Client
from ladder_kube.credentials import load_credentials
from ladder_operator.controller import Controller
from tests.operator.harness import JS, SX, Cluster, tiny, unique_ns


def _jobset(ns: str, name: str, exp: str) -> dict:
    return {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet",
            "metadata": {"name": name, "namespace": ns, "labels": {"ladder.dev/experiment": exp}},
            "spec": {"replicatedJobs": []}}


def test_resync_drops_what_the_list_lacks_and_keeps_what_is_newer(apiserver):
    cluster = Cluster(apiserver.url, unique_ns())
    cluster.create_namespace()
    ns = cluster.ns
    cluster.create(tiny(ns, "exp"))
    for name in ("exp-c32", "exp-c64"):
        assert cluster.http.post(f"{JS}/namespaces/{ns}/jobsets", _jobset(ns, name, "exp"))[0] == 201

    async def scenario():
        kube = AsyncClient(Client(load_credentials(str(apiserver.kubeconfig)), user_agent="test"))
        controller = Controller(kube, namespaces=[ns], kueue_version=None, resync_period=None)
        controller.kick = lambda key: None  # no reconciles here: only the caches are looked at
        try:
            await controller.prime()
            assert set(controller.jobsets[(ns, "exp")]) == {"exp-c32", "exp-c64"}
            # Deleted behind the (absent) watch's back; a JobSet newer than any LIST is cached.
            cluster.http.delete(f"{JS}/namespaces/{ns}/jobsets/exp-c64")
            newer = _jobset(ns, "exp-c96", "exp")
            newer["metadata"]["resourceVersion"] = str(10**12)
            controller.on_jobset("ADDED", newer, kick=False)
            cluster.http.delete(f"{SX}/namespaces/{ns}/scalingexperiments/exp")
            await controller.resync(ns)
            return dict(controller.jobsets), set(controller.experiments)
        finally:
            await controller.close()

    jobsets, experiments = asyncio.run(scenario())
    assert set(jobsets[(ns, "exp")]) == {"exp-c32", "exp-c96"}
    assert experiments == set()
