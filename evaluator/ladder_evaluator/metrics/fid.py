"""FID through clean-fid's own code: its per-image resizer, its batch feature function, its
mean/covariance convention and its Frechet distance. Only the image source differs: images come
from memory (the sampler's output), not from files, so no PNGs are written.

Two feature extractors (the result's metric name says which one was used):
- inception: clean-fid's TorchScript Inception (inception-2015-12-05, from
  evaluation.inceptionWeightsUri, never downloaded, checked by sha256: see inception_weights) in
  clean-fid's InceptionV3W, "clean" mode resizing to 299x299. This torch extractor is the
  reference; the evaluator runs the JAX port (inception_jax) by default (see backends). Reference
  statistics (mu, sigma) from data.referenceSet.statsUri in clean-fid's custom-stats layout
  (an .npz with `mu` [2048] and `sigma` [2048, 2048]);
- digits-classifier: the penultimate layer of a small classifier trained on the digits training
  split (see `digits_classifier`), offline and only comparable to itself.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from cleanfid import fid as cleanfid_fid
from cleanfid.inception_torchscript import InceptionV3W
from cleanfid.resize import build_resizer

from ladder_api import storage
from ladder_api.errors import UserError
from ladder_evaluator.metrics.host_pool import host_map
from ladder_evaluator.metrics.images import to_uint8_rgb

INCEPTION_DIM = 2048


@dataclass
class FeatureExtractor:
    """What clean-fid calls a feature model plus the resize it applies before it (torch: the
    reference implementation; inception_jax.JaxFeatureExtractor has the same interface)."""

    name: str  # goes into the metric name: fid-<name>
    model: Callable[[torch.Tensor], torch.Tensor]  # [B, 3, H, W] in [0, 255] -> [B, dim]
    fn_resize: Callable[[np.ndarray], np.ndarray]  # HWC [0, 255] -> HWC float, as clean-fid's
    dim: int
    device: torch.device
    backend: str = "torch"

    def batch_features(self, resized: np.ndarray) -> np.ndarray:
        """Resized images [B, H, W, 3] float in [0, 255] -> [B, dim], through clean-fid."""
        batch = torch.from_numpy(np.ascontiguousarray(resized.transpose(0, 3, 1, 2)))
        return cleanfid_fid.get_batch_features(batch, self.model, self.device)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _clean_fid_wrapper(base: torch.nn.Module) -> InceptionV3W:
    """clean-fid's InceptionV3W around an already loaded Inception: its constructor loads by file
    name and reads `base.layers`, which the accepted file's layout lacks (see inception_weights).
    The forward stays clean-fid's own: (x - 128) / 128, then `layers`, as "clean" mode runs it."""
    model = InceptionV3W.__new__(InceptionV3W)
    torch.nn.Module.__init__(model)
    model.base, model.layers, model.resize_inside = base, base.layers, False
    return model


def inception_extractor(weights_uri: str, device: torch.device | None = None) -> FeatureExtractor:
    """clean-fid's "clean" mode Inception from a local, hash-checked file (baked into the image)."""
    from ladder_evaluator.metrics import inception_weights

    base = inception_weights.load_base(inception_weights.resolve(weights_uri))
    device = device or default_device()
    model = _clean_fid_wrapper(base).to(device).eval()
    return FeatureExtractor("inception", model, build_resizer("clean"), INCEPTION_DIM, device)


def preprocess(images, extractor: FeatureExtractor) -> np.ndarray:
    """The host half of `features`: model-space images [N, H, W, C] in [-1, 1] -> what the feature
    model takes, as clean-fid's folder path makes it (uint8 RGB as a PNG holds it, then fn_resize
    on the host threads): float32 [N, S, S, 3] in [0, 255]. Separate so bench/sampling.py can time
    the host and device halves of the real path apart."""
    return np.stack(host_map(extractor.fn_resize, to_uint8_rgb(images))).astype(np.float32)


def features(images, extractor: FeatureExtractor, batch_size: int = 64) -> np.ndarray:
    """Features of model-space images [N, H, W, C] in [-1, 1], through clean-fid's functions."""
    out = [extractor.batch_features(preprocess(images[start:start + batch_size], extractor))
           for start in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, extractor.dim), np.float32)


def statistics(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """clean-fid's convention: mean over samples, unbiased covariance (rowvar=False)."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.shape[0] < 2:
        raise ValueError("FID needs at least 2 samples")
    return np.mean(feats, axis=0), np.cov(feats, rowvar=False)


def frechet(mu1, sigma1, mu2, sigma2) -> float:
    return float(cleanfid_fid.frechet_distance(mu1, sigma1, mu2, sigma2))


def fid(
    images, ref: tuple[np.ndarray, np.ndarray], extractor: FeatureExtractor, batch_size: int = 64
) -> float:
    mu, sigma = statistics(features(images, extractor, batch_size))
    return frechet(mu, sigma, *ref)


def save_stats(uri: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray) -> None:
    """Write reference statistics in clean-fid's custom-stats layout (npz: mu, sigma)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, mu=mu, sigma=sigma)
    storage.write_bytes(str(uri), buf.getvalue())


def load_stats(uri: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference (mu, sigma) from an npz in clean-fid's custom-stats layout; checks the dimension
    against the feature extractor so Inception stats are never paired with other features."""
    try:
        raw = storage.read_bytes(uri)
    except FileNotFoundError:
        raise UserError(
            f"reference statistics not found at {uri} (data.referenceSet.statsUri): make them with "
            "clean-fid's make_custom_stats on the reference images, or with "
            "ladder_evaluator.metrics.fid.save_stats"
        ) from None
    try:
        with np.load(io.BytesIO(raw)) as z:
            mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
    except (KeyError, ValueError, OSError) as err:
        raise UserError(
            f"reference statistics at {uri} are not a clean-fid stats file (an .npz with 'mu' and "
            f"'sigma'): {err}"
        ) from None
    if mu.shape != (dim,) or sigma.shape != (dim, dim):
        raise UserError(
            f"reference statistics at {uri} have mu {mu.shape} and sigma {sigma.shape}, but the "
            f"feature extractor gives {dim}-dimensional features (mu ({dim},), sigma ({dim}, {dim})); "
            "they were made with other features: recompute them with the same extractor "
            "(evaluation.fidFeatures)"
        )
    return mu, sigma


def reference_from_images(images: Iterable, extractor: FeatureExtractor, batch_size: int = 64):
    """Reference statistics computed from reference images (offline reference sets)."""
    return statistics(features(np.asarray(images), extractor, batch_size))
