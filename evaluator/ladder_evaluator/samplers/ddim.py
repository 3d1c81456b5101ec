"""DDIM (Song et al. 2021, eq. 12 and 16), with eta: 0 is deterministic, 1 is DDPM-like.

Notation: a_t = alpha-bar_t; x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t);
sigma_t(eta) = eta sqrt((1 - a_prev) / (1 - a_t)) sqrt(1 - a_t / a_prev);
x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma_t^2) eps + sigma_t z.
The previous timestep is t - T // steps; past t = 0 it uses a_prev = alpha-bar_0 (SD v1.5's
`set_alpha_to_one: false`), as diffusers' DDIMScheduler does with that configuration.
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


def tables(alphas_cumprod: np.ndarray, steps: int, *, eta: float = 0.0, steps_offset: int = 1) -> Tables:
    ac = np.asarray(alphas_cumprod, dtype=np.float64)
    T = len(ac)  # noqa: N806 (the paper's T)
    ts = leading(T, steps, steps_offset)
    prev = ts - T // steps
    a_t = ac[ts]
    a_prev = np.where(prev >= 0, ac[np.clip(prev, 0, None)], ac[0])
    var = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
    std = eta * np.sqrt(var)
    return as_tables(
        ts, ac,
        sqrt_a=np.sqrt(a_t), sqrt_1ma=np.sqrt(1 - a_t), sqrt_a_prev=np.sqrt(a_prev),
        dir_coef=np.sqrt(np.clip(1 - a_prev - std**2, 0, None)), std=std,
    )


def init(x: jax.Array) -> State:
    return State(x=x)


def step(state: State, i: jax.Array, eps: jax.Array, tab: Tables, key: jax.Array) -> State:
    c = {k: v[i] for k, v in tab.coef.items()}
    x = state.x.astype(jnp.float32)
    x0 = (x - c["sqrt_1ma"] * eps) / c["sqrt_a"]
    x_prev = c["sqrt_a_prev"] * x0 + c["dir_coef"] * eps
    noise = jax.random.normal(key, x.shape, jnp.float32)
    return State(x=x_prev + c["std"] * noise)


SAMPLER = Sampler(name="ddim", tables=tables, init=init, step=step, stochastic=True)
