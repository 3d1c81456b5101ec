"""ShardedBatches: rows come back in order whatever the batching, padding rows never leak into the
output, and every call reuses one compiled program (sharding itself: test_inception, 8 devices)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ladder_evaluator.metrics.jax_batches import ShardedBatches


def test_rows_in_order_padding_dropped_one_program():
    params = {"w": np.arange(3, dtype=np.float32)}
    run = ShardedBatches(lambda p, x, k: jnp.sum(x * p["w"], axis=-1) + k, params, batch=4)
    x = np.random.default_rng(0).standard_normal((11, 3)).astype(np.float32)
    k = np.arange(11, dtype=np.int32)
    want = x @ params["w"] + k
    np.testing.assert_allclose(run(x, k), want, rtol=1e-6)
    np.testing.assert_allclose(run(x[:3], k[:3]), want[:3], rtol=1e-6)  # one short, padded batch
    assert run(x[:0], k[:0]).size == 0
    assert run.batch == 4 and run.programs() == 1
