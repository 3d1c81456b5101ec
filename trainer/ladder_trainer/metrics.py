"""Training metrics: model FLOP utilisation (the metrics file is ladder_api.artifacts.MetricsWriter).

MFU = achieved model FLOPs / peak. A step costs 3 x the analytic forward FLOPs per example
(forward + backward, the usual convention; ladder_api.ladder counts the forward), the same count
the study's cost estimate uses (ladder_api.estimate.train_flops_per_example). Peak comes from
the chip's datasheet on TPU and GPU; on a CPU, which has no datasheet figure, it is the rate of a
large float32 matmul measured in this process, so the figure is a ratio that is stable across
machines.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from ladder_api.estimate import train_flops_per_example
from ladder_api.tpu import V5E, V5P

# Dense bf16 peak per device, by jax device_kind prefix.
PEAK_FLOPS = {
    "TPU v5 lite": V5E.peak_bf16_flops_per_chip,
    "TPU v5e": V5E.peak_bf16_flops_per_chip,
    "TPU v5p": V5P.peak_bf16_flops_per_chip,
    "TPU v5": V5P.peak_bf16_flops_per_chip,
    "NVIDIA H100": 989e12,
    "NVIDIA H200": 989e12,
}


def matmul_flops_per_s(n: int = 2048, repeats: int = 5, dtype=jnp.float32) -> float:
    """Best-of-`repeats` rate of an n x n x n matmul on the default device."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def peak_flops_per_device(device=None) -> float:
    device = device or jax.devices()[0]
    kind = getattr(device, "device_kind", "")
    for prefix, peak in PEAK_FLOPS.items():
        if kind.startswith(prefix):
            return peak
    return matmul_flops_per_s(1024, repeats=3)


def mfu(examples_per_s: float, gflops_per_forward: float, peak_total: float) -> float:
    return examples_per_s * train_flops_per_example(gflops_per_forward) / peak_total
