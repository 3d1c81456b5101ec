"""The operator's HTTP endpoints, served by its event loop: /healthz, /readyz and /metrics.

Why on the loop and not on a thread of its own (where prometheus_client's start_http_server would
put them): everything the operator does runs on kopf's event loop, so the liveness question is
"does the loop still turn?". A handler that runs on the loop answers exactly that: while the loop
is stuck (a blocking call, a busy loop, a deadlock), /healthz gets no answer, the kubelet's probe
times out, and the pod is restarted. A server on another thread would go on answering.

/readyz is 200 once the controller has listed what exists (its first reconciles can start), 503
before. /metrics is the Prometheus text format of the process's registry.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler


def app(ready: Callable[[], bool]) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="listing existing objects\n")

    application = web.Application()
    application.router.add_get("/healthz", healthz)
    application.router.add_get("/readyz", readyz)
    application.router.add_get("/metrics", make_aiohttp_handler())
    return application


async def serve(port: int, ready: Callable[[], bool], host: str = "0.0.0.0") -> web.AppRunner:
    """Start serving on the running loop; the caller awaits `runner.cleanup()` at shutdown."""
    runner = web.AppRunner(app(ready), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
