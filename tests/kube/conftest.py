from __future__ import annotations

import uuid

import pytest

from ladder_testing.apiserver.client import Http
from ladder_testing.apiserver.fixture import running_apiserver


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    with running_apiserver(tmp_path_factory.mktemp("apiserver")) as api:
        yield api


@pytest.fixture
def client(apiserver):
    from ladder_kube.client import Client
    from ladder_kube.credentials import load_credentials

    c = Client(load_credentials(str(apiserver.kubeconfig)), user_agent="ladder-test/0")
    yield c
    c.close()


def new_experiment(url: str, namespace: str = "default", name: str | None = None) -> str:
    name = name or f"sx-{uuid.uuid4().hex[:8]}"
    code, body = Http(url).post(
        f"/apis/ladder.dev/v1alpha1/namespaces/{namespace}/scalingexperiments",
        {
            "apiVersion": "ladder.dev/v1alpha1",
            "kind": "ScalingExperiment",
            "metadata": {"name": name},
            "spec": {},
        },
    )
    assert code == 201, body
    return name


@pytest.fixture
def experiment(apiserver) -> str:
    return new_experiment(apiserver.url)
