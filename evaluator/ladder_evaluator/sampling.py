"""One entry point for every sampler: `sample(eps_fn, x_T, sampler=..., steps=..., ...)`.

The whole loop is a single jitted `lax.fori_loop` (its trip count traced): the sampler's
per-step coefficients are tabulated on the host (NumPy, float64) and passed in as arrays padded
to a fixed length, its state is a `flax.struct.dataclass`, and the step count and guidance scale
are traced scalars, so one compiled program serves every guidance scale > 1 and every step count
up to the padded length of a (sampler, batch shape).

`eps_fn(x, t, context)` predicts noise (or v, with prediction_type="v"; converted to eps here
with the schedule's alpha-bar). Pass it as a `jax.tree_util.Partial` over the model's parameters
(`Partial(apply, params)`): the parameters are then traced arguments rather than constants baked
into the compiled program, and the compiled loop is reused for as long as the same function is
passed. A plain function works too (its closure becomes constants of the program).

Classifier-free guidance: eps = eps_u + g (eps_c - eps_u), with the conditional and the
unconditional halves evaluated in ONE batched forward (x and t repeated, contexts concatenated).
g = 1 needs only the conditional forward and g = 0 only the unconditional one; neither runs a
second pass, which is how `ladder_api.frontier.sampling_cost` counts forwards.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from ladder_api.spec import NoiseScheduleSpec
from ladder_evaluator import samplers
from ladder_evaluator.samplers.base import Tables
from ladder_trainer.diffusion import alphas_cumprod

EpsFn = Callable[[jax.Array, jax.Array, jax.Array | None], jax.Array]


def guidance_mode(guidance: float | None, cond, uncond) -> str:
    """Which forwards a step runs: "cfg" (both, batched), "cond", "uncond" or "none" (no context)."""
    if guidance is None or float(guidance) == 1.0:
        return "cond" if cond is not None else "none"
    if cond is None or uncond is None:
        raise ValueError(f"guidance {guidance} needs both cond and uncond contexts")
    if float(guidance) == 0.0:
        return "uncond"
    return "cfg"


def _predict_eps(eps_fn, x, t, mode, cond, uncond, guidance, alpha_bar, prediction_type):
    b = x.shape[0]
    tb = jnp.full((b,), t, dtype=jnp.int32)
    if mode == "cfg":
        out = eps_fn(jnp.concatenate([x, x]), jnp.concatenate([tb, tb]), jnp.concatenate([cond, uncond]))
        out_c, out_u = out[:b], out[b:]
        out = out_u + guidance * (out_c - out_u)
    else:
        ctx = {"cond": cond, "uncond": uncond, "none": None}[mode]
        out = eps_fn(x, tb, ctx)
    out = out.astype(jnp.float32)
    if prediction_type == "v":
        # v = sqrt(a) eps - sqrt(1 - a) x0  =>  eps = sqrt(a) v + sqrt(1 - a) x_t
        out = jnp.sqrt(alpha_bar) * out + jnp.sqrt(1.0 - alpha_bar) * x.astype(jnp.float32)
    return out


def _pad(tables: Tables, length: int) -> Tables:
    """Tables padded to `length` by repeating the last entry; only the first `steps` are used."""
    def pad(a):
        return np.pad(np.asarray(a), (0, length - a.shape[0]), mode="edge")

    return jax.tree_util.tree_map(pad, tables)


def bucket(steps: int) -> int:
    """Padded table length: the next power of two (at least 8), so step counts share programs."""
    return max(8, 1 << (steps - 1).bit_length())


@partial(jax.jit, static_argnames=("sampler_name", "mode", "prediction_type"))
def _run(eps_fn, x_T, tables, n, cond, uncond, guidance, key, *, sampler_name, mode, prediction_type):  # noqa: N803
    sampler = samplers.get(sampler_name)

    def body(i, state):
        eps = _predict_eps(
            eps_fn, state.x, tables.timesteps[i], mode, cond, uncond, guidance, tables.alpha_bar[i],
            prediction_type,
        )
        return sampler.step(state, i, eps, tables, jax.random.fold_in(key, i))

    state = jax.lax.fori_loop(0, n, body, sampler.init(x_T.astype(jnp.float32)))
    return state.x


def sample(
    eps_fn: EpsFn,
    x_T: jax.Array,  # noqa: N803 (the paper's x_T)
    *,
    sampler: str,
    steps: int,
    guidance: float | None = None,
    cond: jax.Array | None = None,
    uncond: jax.Array | None = None,
    key: jax.Array | None = None,
    schedule: np.ndarray | None = None,
    prediction_type: str = "epsilon",
    eta: float = 0.0,
    pad_to: int | None = None,
) -> jax.Array:
    """Denoise x_T ~ N(0, I) in `steps` steps; returns x_0 (float32).

    schedule: the training alphas_cumprod (default: SD v1.5's scaled_linear 0.00085..0.012, 1000
    steps). eta: DDIM only. key: needed by DDPM and DDIM with eta > 0. pad_to: length the
    per-step tables are padded to; the step count is a traced loop bound, so every step count up
    to pad_to runs the same compiled program (the evaluator passes its grid's largest count;
    default: the next power of two).
    """
    if prediction_type not in ("epsilon", "v"):
        raise ValueError(f"prediction_type must be 'epsilon' or 'v', got {prediction_type!r}")
    s = samplers.get(sampler)
    ac = alphas_cumprod(NoiseScheduleSpec()) if schedule is None else np.asarray(schedule)
    tables = s.tables(ac, steps, eta=eta) if s.name == "ddim" else s.tables(ac, steps)
    needs_key = s.name == "ddpm" or (s.name == "ddim" and eta > 0)
    if key is None:
        if needs_key:
            raise ValueError(f"sampler {s.name} is stochastic here: pass key=")
        key = jax.random.key(0)
    mode = guidance_mode(guidance, cond, uncond)
    if not isinstance(eps_fn, Partial):
        eps_fn = Partial(eps_fn)
    g = jnp.asarray(1.0 if guidance is None else guidance, jnp.float32)
    length = bucket(steps) if pad_to is None else pad_to
    if length < steps:
        raise ValueError(f"pad_to ({pad_to}) must be at least steps ({steps})")
    return _run(
        eps_fn, x_T, _pad(tables, length), jnp.asarray(steps, jnp.int32), cond, uncond, g, key,
        sampler_name=s.name, mode=mode, prediction_type=prediction_type,
    )
