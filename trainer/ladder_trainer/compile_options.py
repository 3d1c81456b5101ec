"""XLA compiler options the U-Net's programs (the train step, the sampling loop) are compiled with,
per platform: the one place that chooses them.

On CPUs XLA's YNNPACK fusion (`xla_cpu_experimental_ynn_fusion_type`) is turned off for these
programs: its kernels ran the U-Net's sampling loop at 0.6x the speed of XLA's own emitters on the
2-core VM (c = 64, 32x32x4 latents, batch 64 with guidance: 1.66x faster with it off,
bench/evaluator.md, "Sampling in slices, YNN off") and the train step at 0.88x (c = 128: 1.13x
with it off, bench/trainer.md). Options are set per program (jax.jit's
compiler_options), not process-wide through XLA_FLAGS, so the other programs of a process (the
autoencoder, Inception, CLIP) keep XLA's defaults. Accelerators get XLA's defaults: nothing was
measured on one here.
"""

from __future__ import annotations

CPU = {"xla_cpu_experimental_ynn_fusion_type": ""}


def for_platform(platform: str) -> dict[str, str] | None:
    """The options for programs that run on `platform` ("cpu", "tpu", "gpu"), or None."""
    return dict(CPU) if platform == "cpu" else None
