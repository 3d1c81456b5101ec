"""The training noise schedule as the samplers need it: alphas_cumprod (alpha-bar_t of DDPM).

The trainer owns the schedule (`ladder_trainer.diffusion`); until that module exists this is the
same math from `ladder_api.spec.NoiseScheduleSpec`, kept to one small function so it can be
replaced by an import. The formulas are those of the DDPM paper (linear), Stable Diffusion
(scaled_linear: linear in sqrt(beta)) and improved DDPM (cosine, betas capped at 0.999), computed
in float64 and returned as float32 like diffusers' schedulers hold them.
"""

from __future__ import annotations

import math

import numpy as np

from ladder_api.spec import NoiseScheduleKind, NoiseScheduleSpec


def betas(spec: NoiseScheduleSpec) -> np.ndarray:
    n = spec.num_timesteps
    if spec.kind == NoiseScheduleKind.linear:
        return np.linspace(spec.beta_start, spec.beta_end, n, dtype=np.float64)
    if spec.kind == NoiseScheduleKind.scaled_linear:
        return np.linspace(math.sqrt(spec.beta_start), math.sqrt(spec.beta_end), n, dtype=np.float64) ** 2
    if spec.kind == NoiseScheduleKind.cosine:
        def f(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        return np.array([min(1 - f((i + 1) / n) / f(i / n), 0.999) for i in range(n)], dtype=np.float64)
    raise ValueError(f"unknown noise schedule {spec.kind!r}")


def alphas_cumprod(spec: NoiseScheduleSpec | None = None) -> np.ndarray:
    """alpha-bar_t for t = 0..T-1 (t = 0 is the least noisy training timestep)."""
    spec = spec or NoiseScheduleSpec()
    return np.cumprod(1.0 - betas(spec)).astype(np.float32)
