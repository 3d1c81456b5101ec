"""Start the local API server from tests (a background thread, a free port on 127.0.0.1) and
hand out a kubeconfig pointing at it, so clients are configured exactly as against a cluster.

    with running_apiserver(tmp_path) as api:
        subprocess.run([...], env={**os.environ, "KUBECONFIG": str(api.kubeconfig)})
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import yaml
from aiohttp import web

from ladder_testing.apiserver.server import ApiServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_kubeconfig(path: Path, url: str, namespace: str = "default") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "ladder-local",
                "clusters": [{"name": "ladder-local", "cluster": {"server": url}}],
                "users": [{"name": "ladder-local", "user": {"token": "ladder-local"}}],
                "contexts": [
                    {
                        "name": "ladder-local",
                        "context": {
                            "cluster": "ladder-local",
                            "user": "ladder-local",
                            "namespace": namespace,
                        },
                    }
                ],
            }
        )
    )
    return path


class RunningApiServer:
    """Handle on a server running in a thread; `call` runs a function on its loop (for reads of
    the store in assertions that must not race the server)."""

    def __init__(self, server: ApiServer, loop: asyncio.AbstractEventLoop, url: str, kubeconfig: Path):
        self.server, self.loop, self.url, self.kubeconfig = server, loop, url, kubeconfig

    @property
    def store(self):
        return self.server.store

    def call(self, fn, *args):
        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def request_counts(self) -> dict[tuple[str, str], int]:
        return self.call(lambda: dict(self.server.counts))

    def reset_counts(self) -> None:
        self.call(self.server.counts.clear)


@contextlib.contextmanager
def running_apiserver(
    workdir: Path, port: int = 0, history: int = 20000, without_groups: tuple[str, ...] = ()
) -> Iterator[RunningApiServer]:
    from ladder_testing.apiserver.store import Store

    started = threading.Event()
    holder: dict = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = ApiServer(Store(history=history, without_groups=without_groups))
        runner = web.AppRunner(server.app, access_log=None, shutdown_timeout=0.5)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", port)
        loop.run_until_complete(site.start())
        holder.update(loop=loop, server=server, runner=runner, port=site._server.sockets[0].getsockname()[1])  # noqa: SLF001 (port 0 -> real port)
        started.set()
        loop.run_forever()
        server.close_watches()
        loop.run_until_complete(runner.cleanup())
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name="ladder-apiserver", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the local API server did not start")
    url = f"http://127.0.0.1:{holder['port']}"
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = write_kubeconfig(workdir / "kubeconfig", url)
    try:
        yield RunningApiServer(holder["server"], holder["loop"], url, kubeconfig)
    finally:
        holder["loop"].call_soon_threadsafe(holder["loop"].stop)
        thread.join(10)


def dump(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
