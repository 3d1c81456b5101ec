"""The U-Net forward at the sampling loop's shape: the attention as it was (patched in) against
the product's, and the product's with XLA:CPU's YNN fusion off, in one process, interleaved, with a
2048^3 matmul timed between rounds (bench/evaluator.md, "Sampling loop utilisation, tuned").

    python bench/unet_forward_compare.py WIDTH LATENT ROWS REPEATS [noynn]

ROWS = 2 x the sampling batch with guidance (cond and uncond rows in one forward).
"""

from __future__ import annotations

import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from ladder_api.ladder import UNetShape, forward_flops
from ladder_trainer.metrics import matmul_flops_per_s
from ladder_trainer.models import build_unet, init_params
from ladder_trainer.models import unet as unet_mod


def old_attend(q, k, v):
    """The attention before the rewrite: scores scaled after the product, softmax, product."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = jnp.einsum("bnhd,bmhd->bhnm", q, k).astype(jnp.float32) * scale
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    return jnp.einsum("bhnm,bmhd->bnhd", probs, v)


def compile_variants(unet, args, noynn: bool) -> dict:
    def make():  # a new function per variant: jit caches traces by function identity
        return lambda p, x, t, ctx: unet.apply({"params": p}, x, t, ctx)

    new_attend = unet_mod._attend_dense
    unet_mod._attend_dense = old_attend
    try:
        out = {"before": jax.jit(make()).lower(*args).compile()}
    finally:
        unet_mod._attend_dense = new_attend
    lowered = jax.jit(make()).lower(*args)
    out["after"] = lowered.compile()
    if noynn:
        out["after_noynn"] = lowered.compile(compiler_options={"xla_cpu_experimental_ynn_fusion_type": ""})
    return out


def main() -> None:
    c, lat, rows, reps = map(int, sys.argv[1:5])
    shape = UNetShape(base_channels=c)
    unet = build_unet(shape)
    r = np.random.default_rng(0)
    args = (init_params(shape, 0), jnp.asarray(r.standard_normal((rows, lat, lat, 4)), jnp.float32),
            jnp.asarray(r.integers(0, 1000, rows), jnp.float32),
            jnp.asarray(r.standard_normal((rows, 77, 1024)), jnp.float32))
    t0 = time.time()
    compiled = compile_variants(unet, args, len(sys.argv) > 5)
    print("compiled", round(time.time() - t0), "s", flush=True)
    ref = np.asarray(compiled["before"](*args))
    for k, fn in compiled.items():
        diff = float(np.abs(np.asarray(fn(*args)) - ref).max())
        print(k, "max |diff| vs before", diff, "scale", float(np.abs(ref).max()), flush=True)
    flops = rows * forward_flops(shape, lat, 77)
    times: dict = {k: [] for k in compiled}
    mm = []
    for _ in range(reps):
        mm.append(matmul_flops_per_s(2048, 2))
        for k, fn in compiled.items():
            t0 = time.perf_counter()
            fn(*args).block_until_ready()
            times[k].append(time.perf_counter() - t0)
    mm.append(matmul_flops_per_s(2048, 2))
    rate = float(np.median(mm))
    base = min(times["before"])
    for k, v in times.items():
        b = min(v)
        print(f"{k}: best {b:.2f} s  {flops / b / 1e9:.1f} GFLOP/s  util vs matmul {flops / b / rate:.3f}  "
              f"speed vs before {base / b:.2f}x")
    print("matmul GFLOP/s", [round(a / 1e9, 1) for a in mm])


if __name__ == "__main__":
    main()
