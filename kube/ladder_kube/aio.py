"""The client inside an event loop (the operator runs in kopf's): each call runs on a bounded
thread pool, so the loop never waits on the network and at most `workers` calls are in flight.

Cancelling a coroutine (operator shutdown) does not stop its thread: the request finishes or
times out on its own (Client's read timeout) and its answer is dropped, which is safe because
every write the operator makes is idempotent.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ladder_kube import status
from ladder_kube.client import Client
from ladder_kube.resources import EXPERIMENT, Resource

T = TypeVar("T")


class AsyncClient:
    def __init__(self, client: Client, workers: int = 8):
        self.sync = client
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ladder-kube")

    async def call(self, fn: Callable[..., T], *args, **kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.sync.close()

    async def get(self, path: str) -> dict:
        return await self.call(self.sync.get, path)

    async def list(self, path: str, label_selector: str | None = None) -> dict:
        return await self.call(self.sync.list, path, label_selector)

    async def create(self, obj: dict) -> dict | None:
        return await self.call(self.sync.create, obj)

    async def apply(self, obj: dict, *, manager: str, subresource: str | None = None) -> dict:
        return await self.call(self.sync.apply, obj, manager=manager, subresource=subresource)

    async def merge_patch(self, path: str, patch: dict, *, manager: str) -> dict:
        return await self.call(self.sync.merge_patch, path, patch, manager=manager)

    async def json_patch(self, path: str, ops: list[dict], *, manager: str) -> dict:
        return await self.call(self.sync.json_patch, path, ops, manager=manager)

    async def delete(self, path: str) -> dict | None:
        return await self.call(self.sync.delete, path)

    async def preferred_version(self, group: str) -> str | None:
        return await self.call(self.sync.preferred_version, group)

    async def apply_status(
        self, namespace: str, name: str, fragment: dict, *, manager: str, resource: Resource = EXPERIMENT
    ) -> dict:
        return await self.call(
            status.apply_status, self.sync, namespace, name, fragment, manager=manager, resource=resource
        )
