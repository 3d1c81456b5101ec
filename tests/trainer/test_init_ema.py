"""The paper's protocol at the start of training: CompVis' zero initialisation of the residual
outputs (training.initialization) and the EMA warm-up (training.ema.warmup)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladder_trainer.data import digits
from ladder_trainer.data.reader import BatchStream, open_data
from ladder_trainer.models import init_params
from ladder_trainer.train_step import ema_decay_at, ema_update, init_state, train_step

from .conftest import ONE_LEVEL, make_run


def _leaves(params) -> dict[str, np.ndarray]:
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(params)}


def test_compvis_zeroes_exactly_the_residual_outputs_and_keeps_the_rest(tiny_model_config):
    compvis = _leaves(init_params(tiny_model_config, 3, scheme="compvis"))
    lecun = _leaves(init_params(tiny_model_config, 3, scheme="lecun-normal"))
    zeroed = {k for k, v in compvis.items() if k.endswith("['kernel']") and not v.any()}
    # the tiny layout: one res-block per level down (2), in the middle (2) and up (2 x 2), one
    # transformer after each res-block at level 1 (down 1, middle 1, up 2), and conv_out
    assert sum(k.endswith("['conv2']['kernel']") for k in zeroed) == 2 + 2 + 4
    assert sum(k.endswith("['proj_out']['kernel']") for k in zeroed) == 1 + 1 + 2
    assert "['conv_out']['kernel']" in zeroed and len(zeroed) == 8 + 4 + 1
    assert all(lecun[k].any() for k in zeroed), "the legacy scheme draws them at random"
    for k, v in compvis.items():
        if k not in zeroed:
            np.testing.assert_array_equal(v, lecun[k], err_msg=k)


def test_the_trainer_initialises_by_the_spec():
    null = digits.null_context(32, 4)
    zero = init_state(make_run(), 0, null).params["conv_out"]["kernel"]
    legacy = init_state(make_run(initialization="lecun-normal"), 0, null).params["conv_out"]["kernel"]
    assert not np.asarray(zero).any() and np.asarray(legacy).any()


@pytest.mark.parametrize("n_updates", [1, 7, 120])
def test_ema_share_of_the_initial_weights_is_the_closed_form(n_updates):
    """Start the EMA at the initial weights (1) and feed zeros: what remains is the product of
    the decays, 9! N! / (N + 9)! while (1 + n) / (10 + n) < decay, then times decay per update."""
    decay = 0.9  # the warm-up binds for n < 80, the decay after
    ema = {"w": jnp.ones((3,), jnp.float32)}
    zeros = {"w": jnp.zeros((3,), jnp.float32)}
    for n in range(n_updates):
        ema = ema_update(ema, zeros, n, decay, warmup=True)
    warm = next(n for n in range(n_updates + 1) if n == n_updates or (1 + n) / (10 + n) >= decay)
    log_share = (math.lgamma(10) + math.lgamma(warm + 1) - math.lgamma(warm + 10)
                 + (n_updates - warm) * math.log(decay))
    np.testing.assert_allclose(np.asarray(ema["w"]), math.exp(log_share), rtol=2e-4)
    plain = {"w": jnp.ones((3,), jnp.float32)}
    for n in range(min(n_updates, 7)):
        plain = ema_update(plain, zeros, n, decay, warmup=False)
    np.testing.assert_allclose(np.asarray(plain["w"]), decay ** min(n_updates, 7), rtol=1e-5)


def test_warmup_decay_values():
    assert float(ema_decay_at(0, 0.9999, True)) == pytest.approx(0.1)
    assert float(ema_decay_at(90, 0.9999, True)) == pytest.approx(91 / 100)
    assert float(ema_decay_at(10**6, 0.9999, True)) == pytest.approx(0.9999)
    assert ema_decay_at(5, 0.9999, False) == 0.9999


@pytest.mark.slow
def test_zero_initialised_network_trains_on_digits_with_a_warm_ema():
    """Default spec (compvis, EMA warm-up) on the tiny one-level U-Net: the loss falls, the zeroed
    kernels leave zero, and the first EMA update is 0.1 old + 0.9 new."""
    run = make_run(ladder=ONE_LEVEL, steps=20, lrSchedule={"kind": "constant", "warmupSteps": 2},
                   globalBatch=16)
    assert run.training.initialization.value == "compvis" and run.training.ema.warmup
    data = open_data(run.data, run.model)
    stream = BatchStream(data.source, run.training.global_batch, seed=0)
    state = init_state(run, 0, data.null_context)
    p0 = jax.tree_util.tree_map(np.asarray, state.params)
    losses = []
    for step in range(20):
        state, metrics = train_step(state, stream.batch(step), jax.random.key(step))
        losses.append(float(metrics["loss"]))
        if step == 0:
            p1, e1 = (jax.tree_util.tree_map(np.asarray, t) for t in (state.params, state.ema_params))
            for a, b, e in zip(*(jax.tree_util.tree_leaves(t) for t in (p0, p1, e1)), strict=True):
                np.testing.assert_allclose(e, 0.1 * a + 0.9 * b, rtol=1e-5, atol=1e-7)
    assert np.asarray(state.params["conv_out"]["kernel"]).any()
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:3]), losses
