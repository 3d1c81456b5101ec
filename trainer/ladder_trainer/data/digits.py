"""The bundled dataset: scikit-learn's handwritten digits (1,797 8x8 images, 16 grey levels).

Shipped inside scikit-learn, so nothing is downloaded. Images are scaled from 0..16 to [-1, 1]
and trained in pixel space: latent_size 8, latent_channels 1, the identity autoencoder (recorded
as such, `autoencoder.kind: identity`). Captions read "a handwritten digit seven"; their context
comes from the builtin text encoder (``builtin_text``).

Splits are fixed by a seeded permutation, stratified per class, so the held-out test set
(`builtin:digits-test`, 20%: 359 images) never overlaps the training set (`builtin:digits`) and
is the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ladder_trainer.data.builtin_text import NAME as TEXT_ENCODER
from ladder_trainer.data.builtin_text import BuiltinTextEncoder

TRAIN_URI = "builtin:digits"
TEST_URI = "builtin:digits-test"
URIS = {TRAIN_URI: "train", TEST_URI: "test"}
LATENT_SIZE = 8
LATENT_CHANNELS = 1
AUTOENCODER = "identity"
MAX_GREY = 16.0
TEST_FRACTION = 0.2
SPLIT_SEED = 20240531
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

__all__ = [
    "AUTOENCODER", "LATENT_CHANNELS", "LATENT_SIZE", "TEST_URI", "TEXT_ENCODER", "TRAIN_URI",
    "DigitsSplit", "caption", "encode_captions", "from_uri", "load", "null_context", "to_unit",
]


def caption(label: int) -> str:
    return f"a handwritten digit {NUMBER_WORDS[int(label)]}"


@dataclass(frozen=True)
class DigitsSplit:
    images: np.ndarray  # [N, 8, 8, 1] float32 in [-1, 1]
    labels: np.ndarray  # [N] int64
    captions: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def context(self, context_dim: int, context_tokens: int) -> np.ndarray:
        """The builtin text embeddings of the captions, [N, context_tokens, context_dim]."""
        return encode_captions(self.captions, context_dim, context_tokens)


@lru_cache(maxsize=1)
def _raw():
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images.astype(np.float32) / MAX_GREY) * 2.0 - 1.0
    return images[..., None], d.target.astype(np.int64)


@lru_cache(maxsize=1)
def _split_indices() -> tuple[np.ndarray, np.ndarray]:
    _, labels = _raw()
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for k in range(10):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_test = int(round(len(idx) * TEST_FRACTION))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(np.array(train)), np.sort(np.array(test))


def load(split: str = "train") -> DigitsSplit:
    """split: 'train' or 'test' (held out)."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown digits split {split!r}: train or test")
    images, labels = _raw()
    idx = _split_indices()[0 if split == "train" else 1]
    return DigitsSplit(images[idx].copy(), labels[idx].copy(), tuple(caption(k) for k in labels[idx]))


def from_uri(uri: str) -> DigitsSplit:
    """builtin:digits -> train split, builtin:digits-test -> test split."""
    if uri not in URIS:
        raise ValueError(f"unknown builtin dataset {uri!r}: {', '.join(URIS)}")
    return load(URIS[uri])


def encode_captions(captions, context_dim: int, context_tokens: int) -> np.ndarray:
    return BuiltinTextEncoder(context_dim, context_tokens).encode(list(captions))


def null_context(context_dim: int, context_tokens: int) -> np.ndarray:
    """The unconditional embedding used for guidance dropout and classifier-free guidance."""
    return BuiltinTextEncoder(context_dim, context_tokens).null()


def to_unit(images) -> np.ndarray:
    """Model space [-1, 1] -> [0, 1] (for metrics and pictures), clipped."""
    return np.clip((np.asarray(images, np.float32) + 1.0) / 2.0, 0.0, 1.0)
