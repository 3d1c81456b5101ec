"""The offline feature extractor and judge: an MLP trained on the digits training split.

Used where no Inception weights exist (tests, the quickstart): FID on its penultimate-layer
features is recorded as `fid-digits-classifier`, and its predictions on generated digits against
the prompted digit give the prompt-adherence score. It is trained deterministically (fixed
seed, fixed split from ladder_trainer.data.digits, a fixed number of Adam epochs, BLAS on one
thread: OpenBLAS splits its sums differently on another core count, which changed the weights
from machine to machine; ~97% held-out accuracy in a few seconds) and cached on disk as plain
arrays (npz, no pickle) keyed by a hash of its recipe, so every measurement of a run, and every
run on the machine, uses the same network. Evaluations sharing a cache train it once: the
first holds a lock on the cache while it trains, the others wait and load it.

Architecture: 64 pixels (0..16 grey levels, as sklearn ships them) -> tanh(HIDDEN) -> 10 logits.
tanh keeps every feature informative (no dead ReLU units collapsing the covariance).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from cleanfid.resize import make_resizer

from ladder_evaluator.metrics.fid import FeatureExtractor, default_device
from ladder_evaluator.metrics.images import to_uint8_rgb

HIDDEN = 64
SEED = 0
SIDE = 8
MAX_GREY = 16.0
RECIPE = {"hidden": HIDDEN, "seed": SEED, "solver": "adam", "alpha": 1e-3, "max_iter": 300, "blas_threads": 1,
          "version": 2}


@dataclass(frozen=True)
class Weights:
    w0: np.ndarray  # [64, HIDDEN]
    b0: np.ndarray
    w1: np.ndarray  # [HIDDEN, 10]
    b1: np.ndarray


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:12]


def train() -> Weights:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    from ladder_trainer.data import digits

    split = digits.load("train")
    x = _pixels_from_unit(split.images)
    clf = MLPClassifier(
        hidden_layer_sizes=(HIDDEN,), activation="tanh", solver=RECIPE["solver"], alpha=RECIPE["alpha"],
        max_iter=RECIPE["max_iter"], random_state=SEED,
    )
    with warnings.catch_warnings(), threadpool_limits(RECIPE["blas_threads"]):
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget is the recipe
        clf.fit(x, split.labels)
    w0, w1 = clf.coefs_
    b0, b1 = clf.intercepts_
    return Weights(*(np.asarray(a, np.float32) for a in (w0, b0, w1, b1)))


def load_or_train(cache_dir: str | os.PathLike | None) -> Weights:
    """Train once per cache directory (the run's evaluation cache), then reuse."""
    if cache_dir is None:
        return train()
    path = Path(cache_dir) / f"digits-classifier-{recipe_hash()}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process ends
        if path.is_file():
            with np.load(path) as z:
                return Weights(z["w0"], z["b0"], z["w1"], z["b1"])
        weights = train()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, w0=weights.w0, b0=weights.b0, w1=weights.w1, b1=weights.b1)
        os.replace(tmp, path)
        return weights


def _pixels_from_unit(images) -> np.ndarray:
    """Model-space [-1, 1] images [N, 8, 8, 1] -> sklearn's 0..16 scale, flattened."""
    return ((np.asarray(images, np.float32) + 1.0) / 2.0 * MAX_GREY).reshape(len(images), -1)


class DigitsNet(torch.nn.Module):
    """clean-fid feature model: RGB [B, 3, H, W] in [0, 255] -> penultimate features [B, HIDDEN]."""

    def __init__(self, w: Weights):
        super().__init__()
        self.w0 = torch.nn.Parameter(torch.from_numpy(w.w0), requires_grad=False)
        self.b0 = torch.nn.Parameter(torch.from_numpy(w.b0), requires_grad=False)
        self.w1 = torch.nn.Parameter(torch.from_numpy(w.w1), requires_grad=False)
        self.b1 = torch.nn.Parameter(torch.from_numpy(w.b1), requires_grad=False)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        grey = x[:, 0].reshape(x.shape[0], -1) / 255.0 * MAX_GREY
        return torch.tanh(grey @ self.w0 + self.b0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x) @ self.w1 + self.b1


def _resize_to_side(img: np.ndarray) -> np.ndarray:
    if img.shape[:2] == (SIDE, SIDE):
        return img.astype(np.float32)
    return make_resizer("PIL", False, "bicubic", (SIDE, SIDE))(img).astype(np.float32)


def extractor(
    cache_dir: str | os.PathLike | None = None, device: torch.device | None = None
) -> FeatureExtractor:
    device = device or default_device()
    net = DigitsNet(load_or_train(cache_dir)).to(device).eval()
    return FeatureExtractor("digits-classifier", net, _resize_to_side, HIDDEN, device)


def predict(images, ext: FeatureExtractor) -> np.ndarray:
    """Predicted digit of model-space images, through the same preprocessing as the features."""
    u8 = to_uint8_rgb(images)
    x = np.stack([ext.fn_resize(img) for img in u8]).transpose(0, 3, 1, 2).copy()
    with torch.no_grad():
        logits = ext.model.logits(torch.from_numpy(x).to(ext.device))
    return logits.argmax(dim=1).cpu().numpy()


def adherence(images, prompted_labels, ext: FeatureExtractor) -> float:
    """Fraction of generated images the classifier reads as the digit they were prompted with."""
    labels = np.asarray(prompted_labels)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} prompted labels")
    return float(np.mean(predict(images, ext) == labels))
