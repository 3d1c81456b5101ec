"""Noise schedules and the training objective (DDPM forward process, epsilon or v prediction).

Notation (Ho et al. 2020; Salimans & Ho 2022 for v):
  alpha_bar_t = prod_{s<=t} (1 - beta_s)          ``alphas_cumprod[t]``
  x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
  v   = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0
Timesteps are integers 0..T-1 (index 0 is the least noisy), as in SD and diffusers, so the
evaluator's samplers and this trainer agree on what t means.

The schedule is computed in float64 with numpy (it is a constant of the run) and handed to jitted
code as float32; ``alphas_cumprod`` is the one array samplers need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


def betas_for(kind: str, num_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012):
    """Beta_t for t = 0..T-1. scaled_linear is SD's (linear in sqrt(beta)); cosine is Nichol &
    Dhariwal's (beta_start/beta_end unused, betas clipped at 0.999)."""
    if kind == "scaled_linear":
        return np.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=np.float64) ** 2
    if kind == "linear":
        return np.linspace(beta_start, beta_end, num_timesteps, dtype=np.float64)
    if kind == "cosine":
        s = 0.008

        def f(t):
            return math.cos((t / num_timesteps + s) / (1 + s) * math.pi / 2) ** 2

        return np.array(
            [min(1 - f(i + 1) / f(i), 0.999) for i in range(num_timesteps)], dtype=np.float64
        )
    raise ValueError(f"unknown noise schedule kind {kind!r}: scaled_linear, linear or cosine")


@dataclass(frozen=True)
class NoiseSchedule:
    """Hashable description of a schedule (usable as a static jit argument)."""

    kind: str = "scaled_linear"
    num_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012

    @classmethod
    def from_spec(cls, spec) -> NoiseSchedule:
        """From ladder_api.spec.NoiseScheduleSpec (run.training.noise_schedule)."""
        return cls(str(spec.kind), spec.num_timesteps, spec.beta_start, spec.beta_end)

    @property
    def betas(self) -> np.ndarray:
        return betas_for(self.kind, self.num_timesteps, self.beta_start, self.beta_end)

    @property
    def alphas_cumprod(self) -> np.ndarray:
        """alpha_bar_t, float64, shape [T]."""
        return np.cumprod(1.0 - self.betas)


def alphas_cumprod(spec_or_schedule) -> np.ndarray:
    """alpha_bar_t for a NoiseScheduleSpec or NoiseSchedule."""
    sched = spec_or_schedule if isinstance(spec_or_schedule, NoiseSchedule) else NoiseSchedule.from_spec(
        spec_or_schedule
    )
    return sched.alphas_cumprod


def _bcast(a, x):
    return a.reshape(a.shape + (1,) * (x.ndim - a.ndim))


def q_sample(alpha_bar, x0, noise, t):
    """x_t given x_0, eps and integer timesteps t[B]; alpha_bar is the [T] array."""
    ab = _bcast(jnp.asarray(alpha_bar, jnp.float32)[t], x0)
    return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * noise


def target(prediction_type: str, alpha_bar, x0, noise, t):
    """What the network is trained to output: eps, or v = sqrt(ab) eps - sqrt(1-ab) x0."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v":
        ab = _bcast(jnp.asarray(alpha_bar, jnp.float32)[t], x0)
        return jnp.sqrt(ab) * noise - jnp.sqrt(1.0 - ab) * x0
    raise ValueError(f"unknown prediction type {prediction_type!r}: epsilon or v")


def to_eps_and_x0(prediction_type: str, alpha_bar, x_t, model_out, t):
    """Convert a network output into (eps_hat, x0_hat) for samplers; t may be [B] or a scalar."""
    t = jnp.broadcast_to(jnp.asarray(t), x_t.shape[:1])
    ab = _bcast(jnp.asarray(alpha_bar, jnp.float32)[t], x_t)
    sa, sb = jnp.sqrt(ab), jnp.sqrt(1.0 - ab)
    if prediction_type == "epsilon":
        eps = model_out
        x0 = (x_t - sb * eps) / sa
    elif prediction_type == "v":
        x0 = sa * x_t - sb * model_out
        eps = sb * x_t + sa * model_out
    else:
        raise ValueError(f"unknown prediction type {prediction_type!r}: epsilon or v")
    return eps, x0


def drop_context(rng, context, null_context, probability: float):
    """Replace each example's context by the unconditional one with the given probability, so
    classifier-free guidance has an unconditional model to extrapolate from."""
    if probability <= 0:
        return context
    keep = jax.random.uniform(rng, (context.shape[0],)) >= probability
    return jnp.where(keep[:, None, None], context, null_context[None].astype(context.dtype))


def diffusion_loss(apply_fn, params, schedule: NoiseSchedule, prediction_type: str, x0, context, rng):
    """Mean squared error between the network output and the target at uniform random t."""
    alpha_bar = schedule.alphas_cumprod.astype(np.float32)
    t_rng, n_rng = jax.random.split(rng)
    t = jax.random.randint(t_rng, (x0.shape[0],), 0, schedule.num_timesteps)
    noise = jax.random.normal(n_rng, x0.shape, jnp.float32)
    x_t = q_sample(alpha_bar, x0, noise, t)
    out = apply_fn(params, x_t, t.astype(jnp.float32), context)
    return jnp.mean((out.astype(jnp.float32) - target(prediction_type, alpha_bar, x0, noise, t)) ** 2)
