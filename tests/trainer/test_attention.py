"""The U-Net's attention (ladder_trainer.models.unet.attend, arranged for XLA:CPU) is
softmax(q k^T / sqrt(d)) v, dense and query-chunked alike, with its gradients."""

import jax
import jax.numpy as jnp
import numpy as np

from ladder_trainer.models.unet import attend


def _reference(q, k, v):
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    s = np.einsum("bnhd,bmhd->bhnm", q, k) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bhnm,bmhd->bnhd", p, v)


def test_attention_is_softmax_attention_dense_and_chunked():
    rng = np.random.default_rng(0)
    q, k, v = (jnp.asarray(rng.standard_normal((2, n, 3, 8)) * 3, jnp.float32) for n in (16, 12, 12))
    want = _reference(q, k, v)
    np.testing.assert_allclose(attend(q, k, v), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(attend(q, k, v, query_chunk=4), want, rtol=1e-5, atol=1e-5)
    halves = [a.astype(jnp.bfloat16) for a in (q, k, v)]
    half = attend(*halves)
    assert half.dtype == jnp.bfloat16  # float32 scores inside, bf16 rounding of the output only
    np.testing.assert_allclose(np.asarray(half, np.float32), _reference(*halves), rtol=2e-2, atol=5e-2)


def test_attention_gradients_match_the_plain_softmax():
    rng = np.random.default_rng(1)
    q, k, v = (jnp.asarray(rng.standard_normal((1, 8, 2, 4)), jnp.float32) for _ in range(3))

    def plain(q, k, v):
        s = jnp.einsum("bnhd,bmhd->bhnm", q, k) / 2.0
        return jnp.einsum("bhnm,bmhd->bnhd", jax.nn.softmax(s, -1), v)

    for chunk in (1024, 4):
        got = jax.grad(lambda *a, c=chunk: attend(*a, query_chunk=c).sum(), argnums=(0, 1, 2))(q, k, v)
        want = jax.grad(lambda *a: plain(*a).sum(), argnums=(0, 1, 2))(q, k, v)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, atol=1e-5)
