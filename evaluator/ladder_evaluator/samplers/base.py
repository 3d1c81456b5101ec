"""The sampler interface and the timestep spacings shared by the samplers.

Spacings follow diffusers' `set_timesteps` (Table 2 of "Common Diffusion Noise Schedules and
Sample Steps are Flawed", arXiv:2305.08891), so a run with the SD v1.5 scheduler configuration
visits exactly the timesteps a diffusers pipeline would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from flax import struct


@struct.dataclass
class Tables:
    """Per-step constants of one sampling schedule (arrays of length `steps`)."""

    timesteps: jax.Array  # int32 training timestep t_i the model is evaluated at in step i
    alpha_bar: jax.Array  # alpha-bar at t_i (for converting v to eps)
    coef: dict[str, jax.Array]  # sampler-specific coefficients, float32


@dataclass(frozen=True)
class Sampler:
    """One sampler: host-side tables, an initial state and a pure step.

    step(state, i, eps, tables, key) -> state: advance from t_i to t_{i+1} given the noise
    prediction eps(x_{t_i}, t_i). `stochastic` says whether step consumes the key.
    """

    name: str
    tables: Callable[..., Tables]
    init: Callable[[jax.Array], Any]
    step: Callable[..., Any]
    stochastic: bool


def check_steps(steps: int, num_train_timesteps: int) -> None:
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps must be in 1..{num_train_timesteps}, got {steps}")


def leading(num_train_timesteps: int, steps: int, offset: int = 1) -> np.ndarray:
    """diffusers' "leading" spacing (DDIM/DDPM with SD v1.5's steps_offset=1): multiples of
    T // steps, descending, shifted by the offset. The offset shrinks where it would push the
    first timestep past T - 1 (steps = T), where diffusers would index out of range."""
    check_steps(steps, num_train_timesteps)
    ratio = num_train_timesteps // steps
    offset = min(offset, num_train_timesteps - 1 - (steps - 1) * ratio)
    return (np.arange(steps)[::-1] * ratio + offset).astype(np.int64)


def linspace_dpm(num_train_timesteps: int, steps: int) -> np.ndarray:
    """DPMSolverMultistepScheduler's default "linspace" spacing: steps+1 points rounded over
    [0, T-1], descending, the last (0) dropped because the final step goes to sigma = 0."""
    check_steps(steps, num_train_timesteps)
    return np.linspace(0, num_train_timesteps - 1, steps + 1).round()[::-1][:-1].astype(np.int64)


def as_tables(timesteps: np.ndarray, alphas_cumprod: np.ndarray, **coef: np.ndarray) -> Tables:
    import jax.numpy as jnp

    ac = np.asarray(alphas_cumprod, dtype=np.float64)
    return Tables(
        timesteps=jnp.asarray(timesteps, dtype=jnp.int32),
        alpha_bar=jnp.asarray(ac[timesteps], dtype=jnp.float32),
        coef={k: jnp.asarray(v, dtype=jnp.float32) for k, v in coef.items()},
    )
