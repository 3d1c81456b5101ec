"""Model-space images -> the uint8 RGB images metrics see.

Samples leave the sampler in [-1, 1] (NHWC, 1 or 3 channels). They are quantised to uint8 exactly
as writing them to PNG would (round, clip), and grey images are repeated to RGB as
PIL's convert("RGB") does, so in-memory metrics see the same pixels as clean-fid's folder path.
"""

from __future__ import annotations

import numpy as np


def to_uint8_rgb(images) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"expected images [N, H, W, 1 or 3], got shape {x.shape}")
    u8 = np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)
    if u8.shape[-1] == 1:
        u8 = np.repeat(u8, 3, axis=-1)
    return u8
