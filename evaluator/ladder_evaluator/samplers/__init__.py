"""Samplers, one module each, behind one interface (see `base.Sampler`).

Each sampler splits into host-side `tables(alphas_cumprod, steps, ...)` (the timesteps and every
per-step coefficient, computed once in float64 with NumPy) and a pure `step(state, i, eps, tables)`
that only indexes those tables, so the sampling loop in `ladder_evaluator.sampling` is one jitted
`lax.fori_loop` whose state is a `flax.struct.dataclass`.
"""

from __future__ import annotations

from ladder_evaluator.samplers import ddim, ddpm, dpm_solver
from ladder_evaluator.samplers.base import Sampler

SAMPLERS: dict[str, Sampler] = {
    "ddim": ddim.SAMPLER,
    "ddpm": ddpm.SAMPLER,
    "dpmpp_2m": dpm_solver.SAMPLER,
}


def get(name: str) -> Sampler:
    try:
        return SAMPLERS[str(name)]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}") from None
