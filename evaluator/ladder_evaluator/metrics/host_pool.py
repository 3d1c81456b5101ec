"""Per-image host work (clean-fid's resize, CLIP's preprocessing) on one thread per core. Both are
PIL resizes, which release the GIL; at the paper's scale this host side, not the accelerator's
networks, bounds metric throughput (bench/metrics.py). Order is kept: results are as if serial.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="metrics-host")


def host_map(fn: Callable, items: Iterable) -> list:
    return list(_pool().map(fn, items))
