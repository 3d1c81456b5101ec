"""The inception-2015-12-05 network (pool3, 2048 features) in JAX, on weights converted from the
TorchScript file clean-fid uses, so FID features run on the accelerator next to the sampler.

The graph is fixed and pretrained, so it is written as plain functions over a flat parameter
dict keyed by the TorchScript module paths ("mixed_4.tower_1.conv_3"): conversion is then a
one-to-one map, checked to use every tensor of the file exactly once. Each Conv2dLayer of the
file is conv (no bias) -> batch norm with no scale (eps 1e-3, running statistics) -> ReLU; the
batch norm is folded into the kernel and a bias at conversion. Pools follow the file: max pools
pad with -inf, average pools exclude padding (count_include_pad=False), and mixed_10 pools its
last branch with a max pool (a quirk of the 2015 graph). Layout is NHWC; matmul precision is
HIGHEST so an accelerator computes in float32 like the torch reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from ladder_evaluator.metrics.jax_batches import ShardedBatches

DIM = 2048
SIDE = 299
BN_EPS = 1e-3
PRECISION = jax.lax.Precision.HIGHEST

Params = Mapping[str, Mapping[str, jax.Array]]


def conv(params: Params, name: str, x, stride: int = 1, padding: tuple[int, int] = (0, 0)):
    p = params[name]
    y = jax.lax.conv_general_dilated(
        x, p["kernel"], (stride, stride), [(padding[0], padding[0]), (padding[1], padding[1])],
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=PRECISION,
    )
    return jax.nn.relu(y + p["bias"])


def max_pool(x, size: int = 3, stride: int = 2, pad: int = 0):
    pads = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, size, size, 1), (1, stride, stride, 1), pads)


def avg_pool_exclude_pad(x, size: int = 3, stride: int = 1, pad: int = 1):
    window, strides = (1, size, size, 1), (1, stride, stride, 1)
    pads = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pads)
    count = jax.lax.reduce_window(jnp.ones(x.shape[1:3], x.dtype)[None, :, :, None], 0.0, jax.lax.add,
                                  window, strides, pads)
    return total / count


def block_a(params: Params, n: str, x):
    """35x35 blocks mixed, mixed_1, mixed_2."""
    b0 = conv(params, f"{n}.conv", x)
    b1 = conv(params, f"{n}.tower.conv_1", conv(params, f"{n}.tower.conv", x), padding=(2, 2))
    b2 = conv(params, f"{n}.tower_1.conv", x)
    b2 = conv(params, f"{n}.tower_1.conv_1", b2, padding=(1, 1))
    b2 = conv(params, f"{n}.tower_1.conv_2", b2, padding=(1, 1))
    b3 = conv(params, f"{n}.tower_2.conv", avg_pool_exclude_pad(x))
    return jnp.concatenate([b0, b1, b2, b3], axis=-1)


def block_b(params: Params, n: str, x):
    """Grid reduction 35 -> 17 (mixed_3)."""
    b0 = conv(params, f"{n}.conv", x, stride=2)
    b1 = conv(params, f"{n}.tower.conv", x)
    b1 = conv(params, f"{n}.tower.conv_1", b1, padding=(1, 1))
    b1 = conv(params, f"{n}.tower.conv_2", b1, stride=2)
    return jnp.concatenate([b0, b1, max_pool(x)], axis=-1)


def block_c(params: Params, n: str, x):
    """17x17 blocks with factorised 7x7 convolutions (mixed_4 ... mixed_7)."""
    row, col = (0, 3), (3, 0)  # 1x7 and 7x1 kernels
    b0 = conv(params, f"{n}.conv", x)
    b1 = conv(params, f"{n}.tower.conv", x)
    b1 = conv(params, f"{n}.tower.conv_2", conv(params, f"{n}.tower.conv_1", b1, padding=row), padding=col)
    b2 = conv(params, f"{n}.tower_1.conv", x)
    for i, pad in enumerate((col, row, col, row), start=1):
        b2 = conv(params, f"{n}.tower_1.conv_{i}", b2, padding=pad)
    b3 = conv(params, f"{n}.tower_2.conv", avg_pool_exclude_pad(x))
    return jnp.concatenate([b0, b1, b2, b3], axis=-1)


def block_d(params: Params, n: str, x):
    """Grid reduction 17 -> 8 (mixed_8)."""
    b0 = conv(params, f"{n}.tower.conv_1", conv(params, f"{n}.tower.conv", x), stride=2)
    b1 = conv(params, f"{n}.tower_1.conv", x)
    b1 = conv(params, f"{n}.tower_1.conv_1", b1, padding=(0, 3))
    b1 = conv(params, f"{n}.tower_1.conv_2", b1, padding=(3, 0))
    b1 = conv(params, f"{n}.tower_1.conv_3", b1, stride=2)
    return jnp.concatenate([b0, b1, max_pool(x)], axis=-1)


def block_e(params: Params, n: str, x, pool):
    """8x8 blocks with split 1x3 / 3x1 branches (mixed_9: average pool, mixed_10: max pool)."""
    a = conv(params, f"{n}.tower_conv", x)
    b = conv(params, f"{n}.tower_1_conv_1", conv(params, f"{n}.tower_1_conv", x), padding=(1, 1))
    return jnp.concatenate([
        conv(params, f"{n}.conv", x),
        conv(params, f"{n}.tower_mixed_conv", a, padding=(0, 1)),
        conv(params, f"{n}.tower_mixed_conv_1", a, padding=(1, 0)),
        conv(params, f"{n}.tower_1_mixed_conv", b, padding=(0, 1)),
        conv(params, f"{n}.tower_1_mixed_conv_1", b, padding=(1, 0)),
        conv(params, f"{n}.tower_2_conv", pool(x)),
    ], axis=-1)


def features(params: Params, images):
    """Clean-resized images [B, 299, 299, 3] float in [0, 255] -> pool3 features [B, 2048]."""
    if images.shape[1:] != (SIDE, SIDE, 3):
        raise ValueError(f"Inception takes clean-resized [B, {SIDE}, {SIDE}, 3] images, got {images.shape}")
    x = (images - 128.0) / 128.0
    x = conv(params, "conv", x, stride=2)
    x = conv(params, "conv_2", conv(params, "conv_1", x), padding=(1, 1))
    x = conv(params, "conv_4", conv(params, "conv_3", max_pool(x)))
    x = max_pool(x)
    for n in ("mixed", "mixed_1", "mixed_2"):
        x = block_a(params, n, x)
    x = block_b(params, "mixed_3", x)
    for n in ("mixed_4", "mixed_5", "mixed_6", "mixed_7"):
        x = block_c(params, n, x)
    x = block_d(params, "mixed_8", x)
    x = block_e(params, "mixed_9", x, avg_pool_exclude_pad)
    x = block_e(params, "mixed_10", x, lambda y: max_pool(y, stride=1, pad=1))
    return jnp.mean(x, axis=(1, 2))  # pool2: the 8x8 average pool over the whole 8x8 grid


def convert(state: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """The `layers` state dict of the TorchScript Inception (`<path>.weight`, `.beta`, `.mean`,
    `.var` per Conv2dLayer, OIHW) -> {path: {kernel (HWIO, BN scale folded in), bias}}."""
    paths = sorted({k.rsplit(".", 1)[0] for k in state})
    out, used = {}, set()
    for path in paths:
        keys = [f"{path}.{s}" for s in ("weight", "beta", "mean", "var")]
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"Inception state dict: {path} lacks {missing}")
        w, beta, mean, var = (np.asarray(state[k], np.float64) for k in keys)
        scale = 1.0 / np.sqrt(var + BN_EPS)
        kernel = (w * scale[:, None, None, None]).transpose(2, 3, 1, 0)
        out[path] = {"kernel": kernel.astype(np.float32), "bias": (beta - mean * scale).astype(np.float32)}
        used.update(keys)
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(f"Inception state dict has tensors this port does not use: {unused[:5]}")
    return out


@dataclass
class JaxFeatureExtractor:
    """fid.FeatureExtractor's interface (host resize, then batch_features) on JAX devices."""

    name: str
    fn_resize: Callable[[np.ndarray], np.ndarray]
    dim: int
    run: ShardedBatches
    backend: str = "jax"

    def batch_features(self, resized: np.ndarray) -> np.ndarray:
        """Resized images [B, H, W, 3] float in [0, 255] -> [B, dim] (float32, on the host)."""
        return self.run(np.asarray(resized, np.float32))


def extractor(weights_uri: str, batch_size: int = 64, mesh: Mesh | None = None) -> JaxFeatureExtractor:
    """The "clean" mode Inception of clean-fid in JAX: the same hash-checked file as the torch
    reference, clean-fid's own PIL resizer on the host. Converting takes about a second, so the
    converted weights are not cached."""
    from cleanfid.resize import build_resizer

    from ladder_evaluator.metrics import inception_weights

    base = inception_weights.load_base(inception_weights.resolve(weights_uri))
    params = convert({k: v.numpy() for k, v in base.layers.state_dict().items()})
    run = ShardedBatches(features, params, batch_size, mesh)
    return JaxFeatureExtractor("inception", build_resizer("clean"), DIM, run)
