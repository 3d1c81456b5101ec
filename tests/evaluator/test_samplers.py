"""Sampler parity with diffusers (step for step) and DDPM's distribution on a Gaussian toy.

The denoiser is analytic: for data x0 ~ N(MU, S^2) elementwise the exact noise prediction is
E[eps | x_t] = sqrt(1 - a) (x_t - sqrt(a) MU) / (a S^2 + 1 - a); a small context-dependent,
nonlinear term is added so guidance and the solvers' history are exercised.
diffusers and torch are test dependencies only.
"""

from __future__ import annotations

# diffusers and torch are dev dependencies: the parity tests must run, never skip quietly.
import diffusers
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from ladder_api.spec import NoiseScheduleSpec
from ladder_evaluator.model import eps_fn, make_apply
from ladder_evaluator.samplers import base, ddim, dpm_solver
from ladder_evaluator.sampling import guidance_mode, program, program_inputs, sample
from ladder_trainer.diffusion import alphas_cumprod
from ladder_trainer.models import init_params
from tests.trainer.conftest import ONE_LEVEL, make_run

MU, S = 0.3, 0.5
AC = alphas_cumprod(NoiseScheduleSpec())
SD15 = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    steps_offset=1, set_alpha_to_one=False, clip_sample=False,
)


def exact_eps_np(x, t, ctx):
    a = AC[np.asarray(t)].reshape(-1, *([1] * (x.ndim - 1))).astype(np.float64)
    base_eps = np.sqrt(1 - a) * (x - np.sqrt(a) * MU) / (a * S**2 + 1 - a)
    bias = 0.0 if ctx is None else 0.05 * np.tanh(x) * ctx.mean(axis=(1, 2)).reshape(-1, 1, 1, 1)
    return base_eps + bias


def eps_jax(x, t, ctx):
    a = jnp.asarray(AC)[t].reshape(-1, 1, 1, 1)
    base_eps = jnp.sqrt(1 - a) * (x - jnp.sqrt(a) * MU) / (a * S**2 + 1 - a)
    bias = 0.0 if ctx is None else 0.05 * jnp.tanh(x) * ctx.mean(axis=(1, 2)).reshape(-1, 1, 1, 1)
    return base_eps + bias


def x_T(n=3):  # noqa: N802
    return np.random.default_rng(0).standard_normal((n, 4, 4, 2)).astype(np.float32)


def diffusers_loop(scheduler, steps, x, eps_np, guidance=None, cond=None, uncond=None):
    scheduler.set_timesteps(steps)
    sample_t = torch.from_numpy(x.copy())
    ts = [int(t) for t in scheduler.timesteps]
    for t in ts:
        xs = sample_t.numpy().astype(np.float64)
        tt = np.full((xs.shape[0],), t)
        if guidance is None:
            out = eps_np(xs, tt, cond)
        else:
            out_u = eps_np(xs, tt, uncond)
            out = out_u + guidance * (eps_np(xs, tt, cond) - out_u)
        sample_t = scheduler.step(torch.from_numpy(out.astype(np.float32)), t, sample_t).prev_sample
    return ts, sample_t.numpy()


@pytest.mark.parametrize("steps", [4, 10, 50])
def test_ddim_eta0_matches_diffusers(steps):
    sched = diffusers.DDIMScheduler(**SD15)
    ts, ref = diffusers_loop(sched, steps, x_T(), exact_eps_np)
    assert list(ddim.tables(AC, steps).timesteps) == ts
    out = sample(eps_jax, jnp.asarray(x_T()), sampler="ddim", steps=steps)
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("steps", [4, 8, 20])
def test_dpm_solver_pp_2m_matches_diffusers(steps):
    sched = diffusers.DPMSolverMultistepScheduler.from_config(SD15)
    assert sched.config.timestep_spacing == "linspace"  # what an SD v1.5 pipeline gets
    assert sched.config.algorithm_type == "dpmsolver++" and sched.config.solver_order == 2
    ts, ref = diffusers_loop(sched, steps, x_T(), exact_eps_np)
    assert list(dpm_solver.tables(AC, steps).timesteps) == ts
    out = sample(eps_jax, jnp.asarray(x_T()), sampler="dpmpp_2m", steps=steps)
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-4, rtol=0)


def test_guidance_is_one_batched_forward_and_matches_diffusers_cfg():
    rng = np.random.default_rng(1)
    cond = rng.standard_normal((3, 5, 6)).astype(np.float32)
    uncond = np.zeros_like(cond)
    calls = []

    def counting_eps(x, t, ctx):
        calls.append(x.shape[0])  # traced once: records the batch each forward sees
        return eps_jax(x, t, ctx)

    sched = diffusers.DDIMScheduler(**SD15)
    _, ref = diffusers_loop(sched, 6, x_T(), exact_eps_np, guidance=5.0, cond=cond, uncond=uncond)
    out = sample(counting_eps, jnp.asarray(x_T()), sampler="ddim", steps=6, guidance=5.0,
                 cond=jnp.asarray(cond), uncond=jnp.asarray(uncond))
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-4, rtol=0)
    assert calls == [6]  # one forward per step, over cond and uncond stacked
    # another guidance scale and step count in the same padded bucket reuse the compiled loop
    sample(counting_eps, jnp.asarray(x_T()), sampler="ddim", steps=5, guidance=7.0,
           cond=jnp.asarray(cond), uncond=jnp.asarray(uncond))
    assert calls == [6]
    assert guidance_mode(1.0, cond, uncond) == "cond" and guidance_mode(0.0, cond, uncond) == "uncond"
    with pytest.raises(ValueError, match="uncond"):
        guidance_mode(3.0, cond, None)


@pytest.mark.parametrize("rows, seen", [(4, 4), (5, 4), (6, 6), (12, 12), (None, 12)])
def test_a_batch_run_in_slices_samples_what_the_whole_batch_does(rows, seen):
    """forward_rows: the guided forward's 12 rows (6 samples) in slices of at most `rows` rows,
    the most that divide 12 (5 -> 4)."""
    rng = np.random.default_rng(2)
    cond = jnp.asarray(rng.standard_normal((6, 5, 6)).astype(np.float32))
    calls = []

    def counting_eps(x, t, ctx):
        calls.append(x.shape[0])
        return eps_jax(x, t, ctx)

    kw = dict(sampler="dpmpp_2m", steps=4, guidance=5.0, cond=cond, uncond=jnp.zeros_like(cond))
    whole = sample(eps_jax, jnp.asarray(x_T(6)), **kw)
    sliced = sample(counting_eps, jnp.asarray(x_T(6)), forward_rows=rows, **kw)
    assert calls == [seen]  # traced once, at the slice's rows
    np.testing.assert_allclose(np.asarray(sliced), np.asarray(whole), rtol=1e-6, atol=1e-6)


def test_the_sampling_loop_runs_without_ynn_kernels_and_samples_the_same():
    """On a CPU the loop is compiled with ladder_trainer.compile_options (YNN fusion off):
    XLA's defaults produce `ynn_fusion` kernels, the loop `sample` runs none; the results agree."""
    run = make_run(ladder=ONE_LEVEL)
    fn = eps_fn(make_apply(run), init_params(run.model, jax.random.key(0)))
    m = run.model
    x = jax.random.normal(jax.random.key(1), (2, m.latent_size, m.latent_size, m.latent_channels))
    cond = jax.random.normal(jax.random.key(2), (2, m.context_tokens, m.context_dim))
    kw = dict(sampler="ddim", steps=2, guidance=3.0, cond=cond, uncond=jnp.zeros_like(cond))
    ours, xla = program(fn, x, **kw), program(fn, x, compiler_options={}, **kw)
    assert "ynn_fusion" in xla.as_text()  # so the check below can fail
    assert "ynn_fusion" not in ours.as_text()
    args = program_inputs(fn, x, **kw)[0]
    np.testing.assert_allclose(np.asarray(ours(*args)), np.asarray(xla(*args)), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(sample(fn, x, **kw)), np.asarray(ours(*args)))  # sample's loop


def test_v_prediction_is_converted_to_eps():
    def v_np(x, t, ctx):
        a = AC[np.asarray(t)].reshape(-1, 1, 1, 1).astype(np.float64)
        eps = exact_eps_np(x, t, ctx)
        x0 = (x - np.sqrt(1 - a) * eps) / np.sqrt(a)
        return np.sqrt(a) * eps - np.sqrt(1 - a) * x0

    def v_jax(x, t, ctx):
        a = jnp.asarray(AC)[t].reshape(-1, 1, 1, 1)
        eps = eps_jax(x, t, ctx)
        return jnp.sqrt(a) * eps - jnp.sqrt(1 - a) * (x - jnp.sqrt(1 - a) * eps) / jnp.sqrt(a)

    sched = diffusers.DDIMScheduler(**SD15, prediction_type="v_prediction")
    _, ref = diffusers_loop(sched, 8, x_T(), v_np)
    out = sample(v_jax, jnp.asarray(x_T()), sampler="ddim", steps=8, prediction_type="v")
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-4, rtol=0)


def exact_moments(steps):
    """Mean and variance of DDPM's output on the Gaussian toy, propagated exactly: every step is
    linear in x_t plus independent Gaussian noise (written from the DDPM paper, not the tables)."""
    T = len(AC)  # noqa: N806
    ratio = T // steps
    offset = min(1, T - 1 - (steps - 1) * ratio)
    ts = [ratio * k + offset for k in reversed(range(steps))]
    m, v = 0.0, 1.0
    for i, t in enumerate(ts):
        a_t = float(AC[t])
        a_prev = float(AC[t - ratio]) if t - ratio >= 0 else 1.0
        alpha, beta = a_t / a_prev, 1 - a_t / a_prev
        k = np.sqrt(1 - a_t) / (a_t * S**2 + 1 - a_t)  # eps_hat = k (x - sqrt(a) MU)
        # x0_hat = (x - sqrt(1-a) eps_hat) / sqrt(a) = p x + q
        p = (1 - np.sqrt(1 - a_t) * k) / np.sqrt(a_t)
        q = np.sqrt(1 - a_t) * k * np.sqrt(a_t) * MU / np.sqrt(a_t)
        c0 = np.sqrt(a_prev) * beta / (1 - a_t)
        ct = np.sqrt(alpha) * (1 - a_prev) / (1 - a_t)
        var = (1 - a_prev) / (1 - a_t) * beta if i < steps - 1 else 0.0
        m = (c0 * p + ct) * m + c0 * q
        v = (c0 * p + ct) ** 2 * v + var
    return m, v


@pytest.mark.parametrize("steps", [10, 1000])
def test_ddpm_matches_the_exact_output_distribution(steps):
    n = 40_000
    x = jax.random.normal(jax.random.key(3), (n // 100, 10, 10, 1))
    out = np.asarray(sample(eps_jax, x, sampler="ddpm", steps=steps, key=jax.random.key(4))).ravel()
    m, v = exact_moments(steps)
    se_mean, se_var = np.sqrt(v / n), v * np.sqrt(2 / n)
    assert abs(out.mean() - m) < 5 * se_mean
    assert abs(out.var() - v) < 5 * se_var
    if steps == 1000:  # the full chain reproduces the data distribution itself
        assert abs(m - MU) < 0.005 and abs(np.sqrt(v) - S) < 0.005
    # and differs from a deterministic sampler's answer: it really is ancestral
    assert out.std() > 0.3


def test_ddpm_agrees_with_diffusers_ddpm_in_distribution():
    n, steps = 20_000, 10
    sched = diffusers.DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        steps_offset=1, clip_sample=False,
    )
    torch.manual_seed(0)
    x = np.random.default_rng(5).standard_normal((n // 100, 10, 10, 1)).astype(np.float32)
    _, ref = diffusers_loop(sched, steps, x, exact_eps_np)
    out = np.asarray(sample(eps_jax, jnp.asarray(x), sampler="ddpm", steps=steps, key=jax.random.key(6)))
    se = ref.std() / np.sqrt(n)
    assert abs(out.mean() - ref.mean()) < 6 * se
    assert abs(out.std() / ref.std() - 1) < 0.03


def test_stochastic_samplers_need_a_key_and_spacings_are_diffusers():
    with pytest.raises(ValueError, match="key"):
        sample(eps_jax, jnp.asarray(x_T()), sampler="ddpm", steps=4)
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(eps_jax, jnp.asarray(x_T()), sampler="euler", steps=4)
    assert list(base.leading(1000, 4)) == [751, 501, 251, 1]
    assert list(base.leading(1000, 1000))[:2] == [999, 998]  # offset shrinks rather than overflow
    assert list(base.linspace_dpm(1000, 4)) == [999, 749, 500, 250]
    eta1 = sample(eps_jax, jnp.asarray(x_T()), sampler="ddim", steps=4, eta=1.0, key=jax.random.key(0))
    eta0 = sample(eps_jax, jnp.asarray(x_T()), sampler="ddim", steps=4)
    assert float(jnp.abs(eta1 - eta0).max()) > 1e-2


def test_the_schedule_given_is_the_one_sampled_with():
    """The evaluator passes the run's training schedule as an array; None means the spec default."""
    default = sample(eps_jax, jnp.asarray(x_T()), sampler="ddim", steps=4)
    same = sample(eps_jax, jnp.asarray(x_T()), sampler="ddim", steps=4, schedule=AC)
    cosine = alphas_cumprod(NoiseScheduleSpec(kind="cosine"))
    other = sample(eps_jax, jnp.asarray(x_T()), sampler="ddim", steps=4, schedule=cosine)
    np.testing.assert_array_equal(np.asarray(default), np.asarray(same))
    assert float(jnp.abs(other - default).max()) > 1e-2
