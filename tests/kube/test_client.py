"""The verbs against the local API server, the errors they map to, and the thread pool the
operator calls them through."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading

import pytest

from ladder_kube.aio import AsyncClient
from ladder_kube.client import Client
from ladder_kube.credentials import load_credentials
from ladder_kube.errors import UNREACHABLE, ApiError
from ladder_kube.resources import CONFIG_MAP, EXPERIMENT, JOBSET, WORKLOAD, of
from ladder_testing.apiserver.fixture import free_port, write_kubeconfig


def _cm(name: str, **labels) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "data": {"a": "1"},
    }


def test_verbs_on_a_real_api_server(client):
    created = client.create(_cm("k", app="x"))
    assert created["metadata"]["uid"]
    assert client.create(_cm("k")) is None, "409 AlreadyExists is done"
    assert client.get(CONFIG_MAP.path("default", "k"))["data"] == {"a": "1"}
    assert [o["metadata"]["name"] for o in client.list(CONFIG_MAP.path("default"), "app=x")["items"]] == ["k"]
    assert client.list(CONFIG_MAP.path("default"), "app=y")["items"] == []
    merged = client.merge_patch(CONFIG_MAP.path("default", "k"), {"data": {"b": "2"}}, manager="t")
    assert merged["data"] == {"a": "1", "b": "2"}
    patched = client.json_patch(
        CONFIG_MAP.path("default", "k"), [{"op": "replace", "path": "/data/a", "value": "3"}], manager="t"
    )
    assert patched["data"]["a"] == "3"
    applied = client.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "k", "namespace": "default"},
            "data": {"c": "4"},
        },
        manager="m",
    )
    assert applied["data"]["c"] == "4" and "m" in {f["manager"] for f in applied["metadata"]["managedFields"]}
    assert client.delete(CONFIG_MAP.path("default", "k")) is not None
    assert client.delete(CONFIG_MAP.path("default", "k")) is None, "404 on delete is done"
    assert client.preferred_version("kueue.x-k8s.io") == "v1beta2"
    assert client.preferred_version("nope.example.com") is None
    assert client.served(WORKLOAD) == WORKLOAD.at("v1beta2")


def test_errors_carry_status_reason_and_verb_and_reach_the_hook(apiserver):
    seen = []
    client = Client(load_credentials(str(apiserver.kubeconfig)), user_agent="t/0", on_error=seen.append)
    with pytest.raises(ApiError) as info:
        client.get(CONFIG_MAP.path("default", "missing"))
    assert (info.value.status, info.value.reason, info.value.verb) == (404, "NotFound", "get")
    assert "missing" in info.value.message and not info.value.transient
    with pytest.raises(ApiError) as info:
        client.json_patch(CONFIG_MAP.path("default", "missing"), [], manager="t")
    assert seen[0].status == 404 and seen[1].verb == "patch"


def test_no_answer_is_status_0_and_transient(tmp_path):
    seen = []
    kc = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{free_port()}")
    client = Client(load_credentials(str(kc)), user_agent="t/0", on_error=seen.append)
    with pytest.raises(ApiError) as info:
        client.get("/api")
    assert (info.value.status, info.value.reason) == (0, UNREACHABLE) and info.value.transient
    assert seen == [info.value]


def test_a_connection_reset_is_transient(tmp_path):
    """A server that accepts and hangs up without answering (an API server going down)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()

        def hang_up():
            for _ in range(8):  # urllib3 may reconnect a few times
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                conn.recv(65536)
                conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        kc = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{srv.getsockname()[1]}")
        client = Client(load_credentials(str(kc)), user_agent="t/0")
        with pytest.raises(ApiError) as info:
            client.apply(_cm("x"), manager="m")
    assert info.value.status == 0 and info.value.transient and info.value.verb == "apply"


def test_a_503_with_a_status_body_is_transient(tmp_path):
    """The local API server never answers 503, so this one case uses a stand-in HTTP server."""

    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps(
                {"kind": "Status", "reason": "ServiceUnavailable", "message": "etcd down"}
            ).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        kc = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(ApiError) as info:
            Client(load_credentials(str(kc)), user_agent="t/0").get("/api")
    finally:
        server.shutdown()
    assert (info.value.status, info.value.reason, info.value.message) == (
        503,
        "ServiceUnavailable",
        "etcd down",
    )
    assert info.value.transient


def test_the_async_client_calls_on_its_bounded_pool_never_on_the_loop(apiserver):
    threads = []
    client = Client(
        load_credentials(str(apiserver.kubeconfig)),
        user_agent="t/0",
        on_error=lambda err: threads.append(threading.current_thread().name),
    )

    async def run():
        kube = AsyncClient(client, workers=2)
        try:
            results = await asyncio.gather(
                *(kube.get(CONFIG_MAP.path("default", f"none-{i}")) for i in range(6)), return_exceptions=True
            )
            assert all(isinstance(r, ApiError) and r.status == 404 for r in results)
            assert await kube.preferred_version("kueue.x-k8s.io") == "v1beta2"
        finally:
            await kube.close()

    asyncio.run(run())
    assert len(threads) == 6 and all(t.startswith("ladder-kube") for t in threads)
    assert len(set(threads)) <= 2


def test_resources_and_their_paths():
    assert EXPERIMENT.api_version == "ladder.dev/v1alpha1"
    assert (
        EXPERIMENT.path("ns", "e", "status")
        == "/apis/ladder.dev/v1alpha1/namespaces/ns/scalingexperiments/e/status"
    )
    assert CONFIG_MAP.path("ns") == "/api/v1/namespaces/ns/configmaps"
    assert JOBSET.path() == "/apis/jobset.x-k8s.io/v1alpha2/jobsets"
    assert of({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "Workload"}) == WORKLOAD.at("v1beta1")
    assert of(_cm("x")) == CONFIG_MAP
