"""Repeated captions are encoded once (the demo's 6,000 Fashion-MNIST captions are 10 class names):
the same rows as encoding each caption on its own, one encoder pass per distinct caption."""

from __future__ import annotations

import numpy as np

from .test_text_encoders import minilm


def test_repeated_captions_are_encoded_once_with_the_same_rows():
    enc = minilm()
    seen: list[list[str]] = []
    real = enc._encode
    enc._encode = lambda caps: seen.append(list(caps)) or real(caps)
    captions = ["a photo of a bag", "a photo of a coat", "a photo of a bag", "", "a photo of a bag"]
    rows = enc.encode(captions)
    assert [c for batch in seen for c in batch] == ["a photo of a bag", "a photo of a coat", ""]
    assert rows.shape == (5, 77, 384)
    for caption, row in zip(captions, rows, strict=True):
        np.testing.assert_allclose(row, real([caption])[0], rtol=1e-5, atol=1e-6)
