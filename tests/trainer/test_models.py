"""The Flax U-Net is the network the analytic counter describes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladder_api.ladder import PAPER_WIDTHS, UNetShape
from ladder_api.ladder import param_count as analytic_count
from ladder_trainer.models import build_unet, init_params, param_count

from .conftest import make_run

# Tracing the module costs seconds per width. Its layout is the same at every width (only channel
# counts change), so both counts are quadratics in the width: equal at three widths (the smallest,
# SD's and the largest), they are equal at all of them. The other widths run with the slow tests.
FAST_WIDTHS = (64, 320, 768)


@pytest.mark.parametrize("width", [
    w if w in FAST_WIDTHS else pytest.param(w, marks=pytest.mark.slow) for w in PAPER_WIDTHS])
def test_real_module_has_the_analytic_param_count(width):
    shape = UNetShape(base_channels=width, context_dim=1024)
    assert param_count(shape) == analytic_count(shape)


# In the fast suite tensor by tensor: test_weights_loading.py::test_sd15_unet_layout_maps_every_tensor.
@pytest.mark.slow
def test_sd_v15_count():
    assert param_count(UNetShape(base_channels=320, context_dim=768)) == 859_520_964


def test_quickstart_like_config_counts_and_runs(tiny_model_config):
    cfg = tiny_model_config
    assert param_count(cfg) == cfg.params
    model = build_unet(cfg)
    params = init_params(cfg, jax.random.key(0))
    x = jnp.ones((2, cfg.latent_size, cfg.latent_size, cfg.latent_channels))
    ctx = jnp.ones((2, cfg.context_tokens, cfg.context_dim))
    apply = jax.jit(model.apply)
    out = apply({"params": params}, x, jnp.array([1.0, 500.0]), ctx)
    assert out.shape == x.shape and out.dtype == jnp.float32
    assert np.all(np.isfinite(out))
    # The context reaches the output through cross-attention.
    out2 = apply({"params": params}, x, jnp.array([1.0, 500.0]), -ctx)
    assert not np.allclose(out, out2)


def test_bf16_compute_keeps_float32_params():
    # One resolution level: the same blocks, half the compile time of the quickstart layout.
    cfg = make_run(ladder={"channelMult": [1], "attentionLevels": [0]}).model
    params = init_params(cfg, jax.random.key(0))
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))
    model = build_unet(cfg, compute_dtype="bfloat16")
    x = jnp.ones((1, cfg.latent_size, cfg.latent_size, cfg.latent_channels))
    ctx = jnp.ones((1, cfg.context_tokens, cfg.context_dim))
    out = jax.jit(model.apply)({"params": params}, x, jnp.array([3.0]), ctx)
    ref = jax.jit(build_unet(cfg).apply)({"params": params}, x, jnp.array([3.0]), ctx)
    np.testing.assert_allclose(out, ref, atol=0.1, rtol=0.1)
