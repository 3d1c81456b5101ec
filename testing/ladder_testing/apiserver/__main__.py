"""`python -m ladder_testing.apiserver --port N [--kubeconfig FILE]`: the local API server as a process
(the benchmark and manual runs use it; tests start it in a thread with fixture.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web

from ladder_testing.apiserver.fixture import write_kubeconfig
from ladder_testing.apiserver.server import ApiServer
from ladder_testing.apiserver.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ladder_testing.apiserver")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--kubeconfig", type=Path, help="also write a kubeconfig pointing here")
    parser.add_argument("--history", type=int, default=20000, help="watch events kept for resuming")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="GROUP",
        help="API group whose CRDs are not installed (e.g. kueue.x-k8s.io)",
    )
    args = parser.parse_args()
    if args.kubeconfig:
        write_kubeconfig(args.kubeconfig, f"http://{args.host}:{args.port}")
    server = ApiServer(Store(history=args.history, without_groups=tuple(args.without)))

    async def close_watches(_app) -> None:
        server.close_watches()

    server.app.on_shutdown.append(close_watches)
    web.run_app(server.app, host=args.host, port=args.port, access_log=None, print=None, shutdown_timeout=1)


if __name__ == "__main__":
    main()
