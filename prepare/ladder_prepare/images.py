"""Image bytes -> the square pixels the autoencoder encodes (pure: no I/O, no model).

Centre-crop to the largest square, then resize to `size` x `size` with PIL's bicubic filter
(which widens its support when shrinking, i.e. antialiases: the preprocessing clean-fid argues
for). The same function prepares training images and FID reference images, so the reference
statistics see exactly the pixels a training example was made from.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


class Undecodable(ValueError):  # noqa: N818 (a state, read at the call site)
    """The bytes are not an image PIL can decode (or it is truncated, or absurdly large)."""


def decode(data: bytes, mode: str = "RGB"):
    """A PIL image in `mode` ("RGB" or "L"), fully loaded; Undecodable otherwise."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()
        return img.convert(mode)
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as err:
        raise Undecodable(f"{err.__class__.__name__}: {err}") from None


def centre_square(img, size: int):
    """Centre-crop to a square, resize to size x size (PIL bicubic)."""
    from PIL import Image

    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return img


def to_uint8(data: bytes, size: int, channels: int = 3) -> np.ndarray:
    """[size, size, channels] uint8 from encoded image bytes."""
    img = centre_square(decode(data, "RGB" if channels == 3 else "L"), size)
    arr = np.asarray(img, np.uint8)
    return arr if arr.ndim == 3 else arr[..., None]


def to_model_space(u8: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (what the autoencoder and the evaluator's images use)."""
    return np.asarray(u8, np.float32) / 127.5 - 1.0
