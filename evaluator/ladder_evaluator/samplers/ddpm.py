"""DDPM ancestral sampling (Ho et al. 2020) on a strided schedule.

Each step samples the posterior q(x_prev | x_t, x0) of the strided chain with x0 predicted from
eps: with a_t = alpha-bar_t, alpha = a_t / a_prev, beta = 1 - alpha,
mean = sqrt(a_prev) beta / (1 - a_t) x0 + sqrt(alpha) (1 - a_prev) / (1 - a_t) x_t,
variance = (1 - a_prev) / (1 - a_t) beta ("fixed small"), no noise on the last step.
Timesteps use the "leading" spacing with steps_offset = 1 and a_prev = 1 past t = 0, as diffusers'
DDPMScheduler does; with steps = T this is the original 1000-step sampler.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ladder_evaluator.samplers.base import Sampler, Tables, as_tables, leading


@struct.dataclass
class State:
    x: jax.Array


def tables(alphas_cumprod: np.ndarray, steps: int, *, steps_offset: int = 1) -> Tables:
    ac = np.asarray(alphas_cumprod, dtype=np.float64)
    T = len(ac)  # noqa: N806
    ts = leading(T, steps, steps_offset)
    prev = ts - T // steps
    a_t = ac[ts]
    a_prev = np.where(prev >= 0, ac[np.clip(prev, 0, None)], 1.0)
    alpha = a_t / a_prev
    beta = 1 - alpha
    var = np.clip((1 - a_prev) / (1 - a_t) * beta, 1e-20, None)
    std = np.where(np.arange(steps) == steps - 1, 0.0, np.sqrt(var))
    return as_tables(
        ts, ac,
        sqrt_a=np.sqrt(a_t), sqrt_1ma=np.sqrt(1 - a_t),
        c_x0=np.sqrt(a_prev) * beta / (1 - a_t), c_xt=np.sqrt(alpha) * (1 - a_prev) / (1 - a_t), std=std,
    )


def init(x: jax.Array) -> State:
    return State(x=x)


def step(state: State, i: jax.Array, eps: jax.Array, tab: Tables, key: jax.Array) -> State:
    c = {k: v[i] for k, v in tab.coef.items()}
    x = state.x.astype(jnp.float32)
    x0 = (x - c["sqrt_1ma"] * eps) / c["sqrt_a"]
    mean = c["c_x0"] * x0 + c["c_xt"] * x
    return State(x=mean + c["std"] * jax.random.normal(key, x.shape, jnp.float32))


SAMPLER = Sampler(name="ddpm", tables=tables, init=init, step=step, stochastic=True)
