"""ladder_api_errors_total is fed by the client's on_error hook: errors the API answers count by
verb and code, answers the operator expects (404 gone, 409 exists) do not."""

from __future__ import annotations

import pytest

from ladder_kube.client import Client
from ladder_kube.credentials import load_credentials
from ladder_kube.errors import ApiError
from ladder_kube.resources import CONFIG_MAP
from ladder_operator import metrics


def _count(verb: str, code: str) -> float:
    return metrics.API_ERRORS.labels(verb=verb, code=code)._value.get()  # noqa: SLF001


def test_api_errors_are_counted_by_verb_and_code(apiserver):
    client = Client(load_credentials(str(apiserver.kubeconfig)), user_agent="ladder-operator/test",
                    on_error=metrics.count_api_error)
    before = {k: _count(*k) for k in [("get", "404"), ("patch", "422"), ("create", "409")]}
    with pytest.raises(ApiError):
        client.get(CONFIG_MAP.path("default", "missing"))
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "namespace": "default"}}
    client.create(cm)
    assert client.create(cm) is None
    with pytest.raises(ApiError):
        client.json_patch(CONFIG_MAP.path("default", "m"), [{"op": "test", "path": "/data", "value": 1}],
                          manager="t")
    after = {k: _count(*k) for k in before}
    assert after[("get", "404")] == before[("get", "404")]
    assert after[("create", "409")] == before[("create", "409")]
    assert after[("patch", "422")] == before[("patch", "422")] + 1
