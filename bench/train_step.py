"""Benchmark the real train step: steps/s and model FLOP utilisation per ladder width.

    .venv/bin/python bench/train_step.py                       # CPU: c in {64, 96, 128}
    .venv/bin/python bench/train_step.py --widths 320 --latent 64 --dtype bfloat16   # on a GPU/TPU

Utilisation is model FLOPs (3 x the analytic forward FLOPs of ladder_api.ladder, i.e. forward
plus backward, per example) per second, divided by the rate of a large matmul timed in the same
process and dtype, so the figure is a ratio that does not depend on how fast this machine is or
how loaded it is. On an accelerator with a datasheet peak (ladder_trainer.metrics.PEAK_FLOPS) the
utilisation against that peak is printed too. Then, per width, the XLA ops the step spends its time
in (a profiler trace of two steps, bench/xla_profile.py), so the next step of tuning is visible.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from xla_profile import by_kind, print_top_ops, top_ops  # bench/, beside this script

from ladder_api.plan import expand
from ladder_api.spec import ScalingExperiment
from ladder_trainer import compile_options
from ladder_trainer.metrics import PEAK_FLOPS, matmul_flops_per_s, train_flops_per_example
from ladder_trainer.train_step import init_state, train_step


def make_run(width: int, latent: int, channels: int, batch: int, dtype: str, context_dim: int, tokens: int):
    exp = ScalingExperiment.model_validate({
        "apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": "bench"},
        "spec": {
            "ladder": {"widths": [width], "latentSize": latent, "latentChannels": channels,
                       "contextDim": context_dim, "contextTokens": tokens},
            "data": {"trainUri": "gs://unused/"},
            "training": {"globalBatch": batch, "computeDtype": dtype, "lrSchedule": {"warmupSteps": 0},
                         "sharding": {"data": -1, "fsdp": 1}},
            "resources": {"slices": [{"sliceType": "v5p-8"}]},
        },
    })
    return expand(exp).runs[0]


def bench_width(width, args, matmul_rate, peak):
    run = make_run(width, args.latent, args.channels, args.batch, args.dtype, args.context_dim, args.tokens)
    state = init_state(run, 0, np.zeros((args.tokens, args.context_dim), np.float32))
    rng = np.random.default_rng(0)
    batch = {
        "latents": jnp.asarray(rng.standard_normal((args.batch, args.latent, args.latent, args.channels)),
                               jnp.float32),
        "context": jnp.asarray(rng.standard_normal((args.batch, args.tokens, args.context_dim)), jnp.float32),
    }
    t0 = time.perf_counter()
    # the options the trainer compiles with on this platform (sharding.sharded_train_step), or XLA's
    options = None if args.xla_defaults else compile_options.for_platform(jax.devices()[0].platform)
    step = train_step.lower(state, batch, jax.random.key(0)).compile(compiler_options=options)
    state, m = step(state, batch, jax.random.key(0))
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    for _ in range(args.warmup):
        state, m = step(state, batch, jax.random.key(1))
    jax.block_until_ready(m)
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        state, m = step(state, batch, jax.random.key(i))
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t0)
    step_s = float(np.median(times))
    # the reference matmul again after the steps: the ratio uses both, as the load may change
    before = matmul_rate
    dtype = jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32
    after = matmul_flops_per_s(args.matmul, repeats=5, dtype=dtype)
    matmul_rate = (before + after) / 2
    flops = train_flops_per_example(run.model.gflops_per_forward) * args.batch
    row = {
        "width": width, "params": run.model.params, "gflops_fwd": run.model.gflops_per_forward,
        "compile_s": compile_s, "step_s": step_s, "steps_per_s": 1.0 / step_s,
        "achieved_tflops": flops / step_s / 1e12, "mfu_vs_matmul": flops / step_s / matmul_rate,
        "matmul_tflops_before_after": [round(before / 1e12, 3), round(after / 1e12, 3)],
    }
    if peak:
        row["mfu_vs_peak"] = flops / step_s / peak
    if args.top_ops:
        holder = {"state": state}

        def one_step():
            holder["state"], metrics = step(holder["state"], batch, jax.random.key(0))
            return metrics

        every = top_ops(one_step, calls=2, top=0)
        row["top_ops"], row["top_op_kinds"] = every[: args.top_ops], by_kind(every)[: args.top_ops]
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", default="64,96,128")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--context-dim", type=int, default=1024)
    p.add_argument("--tokens", type=int, default=77)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--matmul", type=int, default=2048, help="side of the reference matmul")
    p.add_argument("--top-ops", type=int, default=12, help="XLA ops to list per width (0: no profile)")
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--xla-defaults", action="store_true",
                   help="XLA's defaults, not the trainer's options (ladder_trainer.compile_options)")
    args = p.parse_args(argv)

    dev = jax.devices()[0]
    mm_dtype = jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32
    matmul_rate = matmul_flops_per_s(args.matmul, repeats=5, dtype=mm_dtype)
    peak = next((v for k, v in PEAK_FLOPS.items() if dev.device_kind.startswith(k)), None)
    print(f"device: {dev.device_kind} ({dev.platform}), {args.dtype}; batch {args.batch}, "
          f"{args.latent}x{args.latent}x{args.channels} latents, context {args.tokens}x{args.context_dim}")
    print(f"reference {args.matmul}^3 matmul: {matmul_rate / 1e12:.3f} TFLOP/s"
          + (f"; datasheet peak {peak / 1e12:.0f} TFLOP/s" if peak else ""))
    rows = [bench_width(int(w), args, matmul_rate, peak) for w in args.widths.split(",")]
    print(f"{'c':>5} {'params':>12} {'GFLOP fwd':>10} {'compile s':>10} {'step ms':>9} {'steps/s':>8} "
          f"{'TFLOP/s':>8} {'MFU/matmul':>10}" + (f" {'MFU/peak':>9}" if peak else ""))
    for r in rows:
        print(f"{r['width']:>5} {r['params']:>12,} {r['gflops_fwd']:>10.2f} {r['compile_s']:>10.1f} "
              f"{1e3 * r['step_s']:>9.1f} {r['steps_per_s']:>8.2f} {r['achieved_tflops']:>8.3f} "
              f"{100 * r['mfu_vs_matmul']:>9.1f}%" + (f" {100 * r['mfu_vs_peak']:>8.1f}%" if peak else ""))
    for r in rows:
        if r.get("top_ops"):
            print()
            print_top_ops(r["top_ops"], f"train step c={r['width']}")
            print_top_ops(r["top_op_kinds"], f"train step c={r['width']}, summed by kind")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": dev.device_kind, "args": vars(args), "matmul_flops_per_s": matmul_rate,
                       "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
