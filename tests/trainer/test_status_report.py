"""The trainer's progress reports against the local API server: they land in status.sizes[width]
beside the operator's fields, a report without loss keeps the loss, and a report that cannot be
delivered returns False instead of stopping training."""

from __future__ import annotations

import uuid

import pytest

from ladder_kube.client import Client
from ladder_kube.credentials import load_credentials
from ladder_testing.apiserver.client import Http
from ladder_testing.apiserver.fixture import free_port, running_apiserver, write_kubeconfig
from ladder_trainer.status_report import ClusterReporter

SX = "/apis/ladder.dev/v1alpha1/namespaces/default/scalingexperiments"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_apiserver(tmp_path_factory.mktemp("apiserver")) as server:
        yield server


def test_reports_merge_into_the_size_entry_and_keep_what_they_set(api):
    http = Http(api.url)
    name = f"sx-{uuid.uuid4().hex[:8]}"
    assert http.post(SX, {"apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment",
                          "metadata": {"name": name}, "spec": {}})[0] == 201
    operator = {"apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": name},
                "status": {"sizes": [{"width": 96, "phase": "Training"}]}}
    assert http.apply(f"{SX}/{name}/status", operator, "ladder-operator", force=True)[0] == 200
    client = Client(load_credentials(str(api.kubeconfig)), user_agent="ladder-trainer/test")
    reporter = ClusterReporter(name, "default", 96, client=client)
    assert reporter.report(step=10, total_steps=20, loss=0.5, checkpoint_step=10, checkpoint_uri="gs://b/10")
    # The final report has no loss; the loss reported before stays.
    assert reporter.report(step=20, total_steps=20, checkpoint_step=20, checkpoint_uri="gs://b/20")
    (size,) = http.get(f"{SX}/{name}")[1]["status"]["sizes"]
    assert size == {"width": 96, "phase": "Training", "step": 20, "totalSteps": 20, "loss": 0.5,
                    "checkpointStep": 20, "checkpointUri": "gs://b/20"}
    assert reporter.writer.manager.startswith("ladder-trainer-c96-")


def test_an_undeliverable_report_is_not_fatal(tmp_path):
    kc = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{free_port()}")
    client = Client(load_credentials(str(kc)), user_agent="ladder-trainer/test")
    reporter = ClusterReporter("exp", "default", 96, client=client)
    assert reporter.report(step=1, total_steps=2, loss=1.0) is False
