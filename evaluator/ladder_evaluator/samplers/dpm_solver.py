"""DPM-Solver++(2M) (Lu et al. 2022, arXiv:2211.01095, Algorithm 2), data-prediction form.

Notation: alpha_t = sqrt(a_t), sigma_t = sqrt(1 - a_t), lambda_t = log(alpha_t / sigma_t),
h_i = lambda_{t_{i+1}} - lambda_{t_i}, D0 = x0_i (data prediction), r_i = h_{i-1} / h_i,
D1 = (x0_i - x0_{i-1}) / r_i. First order (DPM-Solver-1 = DDIM):
x_{i+1} = (sigma_{i+1} / sigma_i) x_i - alpha_{i+1} (e^{-h} - 1) D0; second order adds
-0.5 alpha_{i+1} (e^{-h} - 1) D1 (the "midpoint" form).
The first step is first order (no history) and so is the last, which lands on sigma = 0 and
returns x0 directly ("lower order final": second-order updates into sigma = 0 are unstable on
short schedules). Timesteps: diffusers' default "linspace" spacing for this scheduler, which is
what an SD v1.5 pipeline gets (its config sets no timestep_spacing).
All coefficients are tabulated in float64 from sigma ratios, so no log(0) reaches the device.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ladder_evaluator.samplers.base import Sampler, Tables, as_tables, linspace_dpm


@struct.dataclass
class State:
    x: jax.Array
    x0_prev: jax.Array  # data prediction of the previous step (D0 of step i-1)


def tables(alphas_cumprod: np.ndarray, steps: int) -> Tables:
    ac = np.asarray(alphas_cumprod, dtype=np.float64)
    ts = linspace_dpm(len(ac), steps)
    a = ac[ts]
    alpha, sigma = np.sqrt(a), np.sqrt(1 - a)
    alpha_next = np.append(alpha[1:], 1.0)
    sigma_next = np.append(sigma[1:], 0.0)
    # e^{-h_i} = (sigma_{i+1} / alpha_{i+1}) / (sigma_i / alpha_i): zero on the final step
    exp_neg_h = (sigma_next / alpha_next) / (sigma / alpha)
    c_x = sigma_next / sigma
    c_d0 = -alpha_next * (exp_neg_h - 1.0)
    # r_i = h_{i-1} / h_i; only used where second order applies (0 < i < steps - 1)
    lam = np.log(alpha) - np.log(sigma)
    c_d1 = np.zeros(steps)
    for i in range(1, steps - 1):
        lam_next = lam[i + 1]
        r = (lam[i] - lam[i - 1]) / (lam_next - lam[i])
        c_d1[i] = 0.5 * c_d0[i] / r
    return as_tables(ts, ac, alpha=alpha, sigma=sigma, c_x=c_x, c_d0=c_d0, c_d1=c_d1)


def init(x: jax.Array) -> State:
    return State(x=x, x0_prev=jnp.zeros_like(x, dtype=jnp.float32))


def step(state: State, i: jax.Array, eps: jax.Array, tab: Tables, key: jax.Array) -> State:
    del key
    c = {k: v[i] for k, v in tab.coef.items()}
    x = state.x.astype(jnp.float32)
    x0 = (x - c["sigma"] * eps) / c["alpha"]
    x_next = c["c_x"] * x + c["c_d0"] * x0 + c["c_d1"] * (x0 - state.x0_prev)
    return State(x=x_next, x0_prev=x0)


SAMPLER = Sampler(name="dpmpp_2m", tables=tables, init=init, step=step, stochastic=False)
