"""The XLA ops a jitted call spends its time in, from a JAX profiler trace.

`top_ops(run, calls)` traces `calls` executions of `run()` (already compiled) with
`jax.profiler.trace(..., create_perfetto_trace=True)` and sums the duration of every event the
XLA runtime tags with the HLO op it executes (`args.hlo_op`: CPU thunks, GPU kernels), so the table
says which ops of the optimized program take the time: the next thing to tune. No profiler plugin
is needed to read it (the perfetto trace is plain JSON).
"""

from __future__ import annotations

import collections
import gzip
import json
import re
import tempfile
from pathlib import Path


def top_ops(run, calls: int = 2, top: int = 15) -> list[dict]:
    """[{op, ms_per_call, share}] for the `top` ops by time (0: all), over `calls` runs of `run()`."""
    import jax

    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            for _ in range(calls):
                jax.block_until_ready(run())
        (trace,) = Path(d).rglob("perfetto_trace.json.gz")
        data = json.loads(gzip.decompress(trace.read_bytes()))
    events = data["traceEvents"] if isinstance(data, dict) else data
    total: collections.Counter = collections.Counter()
    for e in events:
        op = (e.get("args") or {}).get("hlo_op")
        if e.get("ph") == "X" and op:
            total[op] += float(e.get("dur", 0.0))
    whole = sum(total.values()) or 1.0
    return [{"op": op, "ms_per_call": us / 1e3 / calls, "share": us / whole}
            for op, us in total.most_common(top or None)]


def by_kind(rows: list[dict]) -> list[dict]:
    """The same time summed per kind of op (the HLO name without its `.N` instance suffix):
    "convolution", "copy_reverse_fusion", "dot", ... (rows should be every op: `top_ops(top=0)`)."""
    kinds: collections.Counter = collections.Counter()
    ms: collections.Counter = collections.Counter()
    for r in rows:
        kind = re.sub(r"\.\d+$", "", r["op"])
        kinds[kind] += r["share"]
        ms[kind] += r["ms_per_call"]
    return [{"op": k, "ms_per_call": ms[k], "share": v} for k, v in kinds.most_common()]


def print_top_ops(rows: list[dict], title: str) -> None:
    print(f"{title}: XLA ops by time (profiler trace)")
    print(f"{'share':>7} {'ms/call':>9}  op")
    for r in rows:
        print(f"{100 * r['share']:>6.1f}% {r['ms_per_call']:>9.2f}  {r['op']}")
