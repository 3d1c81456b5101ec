"""Noise schedules and the training targets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladder_trainer import diffusion
from ladder_trainer.diffusion import NoiseSchedule


def test_scaled_linear_is_sd_schedule():
    s = NoiseSchedule()
    betas = s.betas
    assert len(betas) == 1000
    assert betas[0] == pytest.approx(0.00085) and betas[-1] == pytest.approx(0.012)
    # Linear in sqrt(beta), so the midpoint of sqrt is the mean of the end points' sqrt.
    assert np.sqrt(betas[500]) == pytest.approx(0.00085**0.5 + (0.012**0.5 - 0.00085**0.5) * 500 / 999)
    ab = s.alphas_cumprod
    assert np.all(np.diff(ab) < 0)
    assert ab[-1] == pytest.approx(0.0047, abs=2e-4)  # SD v1.5's final alpha_bar


def test_linear_and_cosine_schedules():
    lin = NoiseSchedule("linear", 10, 0.1, 0.2).betas
    np.testing.assert_allclose(lin, np.linspace(0.1, 0.2, 10))
    cos = NoiseSchedule("cosine", 1000).alphas_cumprod
    assert cos[0] > 0.9999 and cos[-1] < 1e-3
    with pytest.raises(ValueError, match="unknown noise schedule"):
        NoiseSchedule("quadratic").betas  # noqa: B018


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_targets_invert_to_eps_and_x0(prediction):
    ab = NoiseSchedule().alphas_cumprod.astype(np.float32)
    k1, k2 = jax.random.split(jax.random.key(0))
    x0 = jax.random.normal(k1, (4, 8, 8, 1))
    eps = jax.random.normal(k2, (4, 8, 8, 1))
    t = jnp.array([0, 10, 500, 999])
    xt = diffusion.q_sample(ab, x0, eps, t)
    out = diffusion.target(prediction, ab, x0, eps, t)
    eps_hat, x0_hat = diffusion.to_eps_and_x0(prediction, ab, xt, out, t)
    np.testing.assert_allclose(eps_hat, eps, atol=2e-3 if prediction == "epsilon" else 1e-4)
    np.testing.assert_allclose(x0_hat[:3], x0[:3], atol=2e-3)


def test_guidance_dropout_replaces_whole_contexts():
    ctx = jnp.ones((1000, 4, 8))
    null = jnp.zeros((4, 8))
    out = diffusion.drop_context(jax.random.key(1), ctx, null, 0.25)
    dropped = np.asarray(jnp.all(out == 0, axis=(1, 2)))
    kept = np.asarray(jnp.all(out == 1, axis=(1, 2)))
    assert np.all(dropped | kept)
    assert 0.2 < dropped.mean() < 0.3
    assert diffusion.drop_context(jax.random.key(1), ctx, null, 0.0) is ctx
