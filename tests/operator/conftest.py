from __future__ import annotations

import os
from pathlib import Path

import pytest

from ladder_testing.apiserver.fixture import free_port, running_apiserver
from tests.operator.harness import Cluster, OperatorProcess, unique_ns


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    if os.environ.get("LADDER_TEST_KUBECONFIG"):
        pytest.skip("scenario tests drive the local API server (they play JobSet and Kueue over its API)")
    with running_apiserver(tmp_path_factory.mktemp("apiserver")) as api:
        yield api


@pytest.fixture(scope="module")
def bucket(gcs):
    """The experiments' storage (storage.outputUri) for the module: a bucket of the GCS emulator,
    which the operator process reads (STORAGE_EMULATOR_HOST is in its environment)."""
    return gcs.bucket("ladder-operator-tests")


@pytest.fixture(scope="module")
def operator_process(apiserver, bucket, tmp_path_factory):
    """One `ladder operator` process for the module; tests isolate themselves by namespace. Its
    gs:// is the module's GCS emulator (outputs must be on gs:// for the operator to accept them)."""
    log = Path(tmp_path_factory.mktemp("operator")) / "operator.log"
    proc = OperatorProcess(apiserver.kubeconfig, log, ["--metrics-port", str(free_port())]).start()
    yield proc
    proc.stop()


@pytest.fixture
def cluster(apiserver, bucket):
    c = Cluster(apiserver.url, unique_ns(), kubeconfig=apiserver.kubeconfig, storage=bucket)
    c.create_namespace()
    return c
