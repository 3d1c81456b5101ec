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
unconditional halves evaluated in ONE batched forward (x and t repeated, contexts interleaved row
by row, so a batch split over devices stays split the same way).
g = 1 needs only the conditional forward and g = 0 only the unconditional one; neither runs a
second pass, which is how `ladder_api.frontier.sampling_cost` counts forwards.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from ladder_api.spec import NoiseScheduleSpec
from ladder_evaluator import samplers
from ladder_evaluator.samplers.base import Tables
from ladder_trainer import compile_options
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


def _in_slices(eps_fn, rows: int | None):
    """eps_fn applied to at most `rows` rows at a time (a `lax.map` over slices of the batch).

    Why: on a CPU the U-Net's time per row grows with the rows of one forward (at c = 64 and
    32x32 latents each level-0 attention holds a [rows, 8, 1024, 1024] float32 score matrix, GiBs
    at 128 rows, far past any cache; bench/evaluator.md), so slices of a few rows run faster than
    the whole batch at once. Rows are independent, so the result is the same. Slice j holds rows
    j, n + j, 2n + j, ... (n slices): with the batch split over devices in contiguous blocks, every
    slice keeps the same share on every device and no row crosses devices. A slice's rows divide
    the batch and are a multiple of gcd(rows, batch) (so of the device count when both are)."""
    def call(x, t, ctx):
        total = x.shape[0]
        if rows is None or total <= rows:
            return eps_fn(x, t, ctx)
        unit = math.gcd(rows, total)
        size = max(d for d in range(unit, rows + 1, unit) if total % d == 0)
        n = total // size

        def split(a):
            return None if a is None else jnp.swapaxes(a.reshape(size, n, *a.shape[1:]), 0, 1)

        out = jax.lax.map(lambda a: eps_fn(*a), (split(x), split(t), split(ctx)))
        return jnp.swapaxes(out, 0, 1).reshape(total, *out.shape[2:])

    return call


def _predict_eps(eps_fn, x, t, mode, cond, uncond, guidance, alpha_bar, prediction_type):
    b = x.shape[0]
    tb = jnp.full((b,), t, dtype=jnp.int32)
    if mode == "cfg":
        out = eps_fn(_pairs(x, x), _pairs(tb, tb), _pairs(cond, uncond))
        out = out.reshape(b, 2, *out.shape[1:])
        out_c, out_u = out[:, 0], out[:, 1]
        out = out_u + guidance * (out_c - out_u)
    else:
        ctx = {"cond": cond, "uncond": uncond, "none": None}[mode]
        out = eps_fn(x, tb, ctx)
    out = out.astype(jnp.float32)
    if prediction_type == "v":
        # v = sqrt(a) eps - sqrt(1 - a) x0  =>  eps = sqrt(a) v + sqrt(1 - a) x_t
        out = jnp.sqrt(alpha_bar) * out + jnp.sqrt(1.0 - alpha_bar) * x.astype(jnp.float32)
    return out


def _pairs(a, b):
    """Rows a0, b0, a1, b1, ...: sample i's conditional and unconditional inputs side by side, so
    a batch split over devices keeps both halves of each sample on one device (concatenating
    [a; b] instead would put every device's conditional rows on the first half of the mesh and
    need a reshuffle between devices at every step)."""
    return jnp.stack([a, b], axis=1).reshape(2 * a.shape[0], *a.shape[1:])


def _pad(tables: Tables, length: int) -> Tables:
    """Tables padded to `length` by repeating the last entry; only the first `steps` are used."""
    def pad(a):
        return np.pad(np.asarray(a), (0, length - a.shape[0]), mode="edge")

    return jax.tree_util.tree_map(pad, tables)


def bucket(steps: int) -> int:
    """Padded table length: the next power of two (at least 8), so step counts share programs."""
    return max(8, 1 << (steps - 1).bit_length())


STATICS = ("sampler_name", "mode", "prediction_type", "forward_rows")


@functools.cache
def _jitted(options: tuple[tuple[str, str], ...]):
    """The loop jitted with these XLA compiler options (one jit, so one trace cache, per set)."""
    return jax.jit(_loop, static_argnames=STATICS, compiler_options=dict(options) or None)


def _loop_on(x) -> Callable:
    """The loop compiled with the options of the platform x lives on (ladder_trainer.compile_options)."""
    platform = next(iter(x.devices())).platform if isinstance(x, jax.Array) else jax.default_backend()
    return _jitted(tuple(sorted((compile_options.for_platform(platform) or {}).items())))


def _loop(eps_fn, x_T, tables, n, cond, uncond, guidance, key, *, sampler_name, mode, prediction_type,  # noqa: N803
          forward_rows):
    sampler = samplers.get(sampler_name)
    eps_fn = _in_slices(eps_fn, forward_rows)

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
    forward_rows: int | None = None,
) -> jax.Array:
    """Denoise x_T ~ N(0, I) in `steps` steps; returns x_0 (float32).

    schedule: the training alphas_cumprod (default: SD v1.5's scaled_linear 0.00085..0.012, 1000
    steps). eta: DDIM only. key: needed by DDPM and DDIM with eta > 0. pad_to: length the
    per-step tables are padded to; the step count is a traced loop bound, so every step count up
    to pad_to runs the same compiled program (the evaluator passes its grid's largest count;
    default: the next power of two). forward_rows: the most rows one U-Net forward runs (the
    guided forward has 2 x batch rows); more are run in slices of that many (`_in_slices`).
    """
    args, statics = program_inputs(
        eps_fn, x_T, sampler=sampler, steps=steps, guidance=guidance, cond=cond, uncond=uncond, key=key,
        schedule=schedule, prediction_type=prediction_type, eta=eta, pad_to=pad_to, forward_rows=forward_rows,
    )
    return _loop_on(x_T)(*args, **statics)


def program(*args, compiler_options: dict | None = None, **kwargs):
    """The compiled sampling loop `sample(*args, **kwargs)` runs (same arguments), for what XLA
    reports about it: per-device shapes of a sharded batch, FLOPs (`cost_analysis()`), memory.
    Call it with `program_inputs(...)[0]`. compiler_options: instead of the platform's
    (ladder_trainer.compile_options), these ({} for XLA's defaults), for benchmarks."""
    args, statics = program_inputs(*args, **kwargs)
    options = None if compiler_options is None else tuple(sorted(compiler_options.items()))
    loop = _loop_on(args[1]) if options is None else _jitted(options)
    return loop.lower(*args, **statics).compile()


def program_inputs(eps_fn, x_T, *, sampler, steps, guidance=None, cond=None, uncond=None, key=None,  # noqa: N803
                   schedule=None, prediction_type="epsilon", eta=0.0, pad_to=None, forward_rows=None):
    """The jitted loop's arguments and static arguments for `sample`'s parameters."""
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
    args = (eps_fn, x_T, _pad(tables, length), jnp.asarray(steps, jnp.int32), cond, uncond, g, key)
    statics = {"sampler_name": s.name, "mode": mode, "prediction_type": prediction_type,
               "forward_rows": forward_rows}
    return args, statics
