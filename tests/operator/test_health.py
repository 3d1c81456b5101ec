"""The operator's endpoints are answered by its event loop: a loop that is stuck gets no answer
to /healthz (so the kubelet restarts the pod), while /metrics served from a thread of its own,
what the liveness probe used to ask, goes on answering."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request

import pytest

from ladder_operator import health
from ladder_testing.apiserver.fixture import free_port


@pytest.fixture
def loop_with_endpoints():
    """An event loop in a thread (the operator's, in miniature) serving the endpoints."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state = {"primed": False}
    port = free_port()

    def run():
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(health.serve(port, lambda: state["primed"], host="127.0.0.1"))
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(30)
    yield loop, f"http://127.0.0.1:{port}", state
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as rsp:
            return rsp.status, rsp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_healthz_answers_only_while_the_loop_turns(loop_with_endpoints):
    loop, url, _ = loop_with_endpoints
    assert get(url + "/healthz") == (200, "ok\n")
    release = threading.Event()
    blocked = threading.Event()

    def stuck():  # a blocking call on the loop: nothing else runs until it returns
        blocked.set()
        release.wait(60)

    loop.call_soon_threadsafe(stuck)
    assert blocked.wait(10)
    try:
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            get(url + "/healthz", timeout=1.0)  # the probe's timeoutSeconds, shortened
    finally:
        release.set()
    assert get(url + "/healthz")[0] == 200


def test_readyz_waits_for_the_initial_listing_and_metrics_are_served(loop_with_endpoints):
    import ladder_operator.metrics  # noqa: F401 (registers the operator's metrics)

    _, url, state = loop_with_endpoints
    assert get(url + "/readyz")[0] == 503
    state["primed"] = True
    assert get(url + "/readyz")[0] == 200
    code, text = get(url + "/metrics")
    assert code == 200 and "ladder_reconciles_total" in text and "ladder_api_errors_total" in text
