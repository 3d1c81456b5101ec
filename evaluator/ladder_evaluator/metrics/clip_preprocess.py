"""open_clip's evaluation transform on the host without torch: PIL resize, centre crop, /255,
normalise, giving [S, S, 3] float32 (channels last, for clip_jax).

It is read from the transform open_clip built (`Compose([Resize, CenterCrop, MaybeConvertMode,
MaybeToTensor, Normalize])` for its default "shortest" resize mode, without CenterCrop for
"squash"), so it follows the weights' preprocessing config, and it reproduces torchvision's
arithmetic on PIL images: the output size of Resize (shorter side to S, longer side truncated
as int(S * long / short); no resize when the size already matches), PIL's resampling with the
same filter, CenterCrop's offsets int(round((H - S) / 2)) after zero padding of a smaller
image, and float32 (x / 255 - mean) / std. Other transforms (open_clip's "longest" mode) raise
clip_jax.NotPortedError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ladder_evaluator.metrics.clip_jax import NotPortedError


@dataclass(frozen=True)
class Preprocess:
    resize: tuple[int, ...]  # (S,): shorter side to S; (H, W): exact size
    resample: int  # PIL filter
    crop: tuple[int, int] | None  # (H, W) centre crop
    mean: np.ndarray  # float32 [3]
    std: np.ndarray

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 [H, W, 3] -> float32 [S, S, 3]."""
        img = Image.fromarray(np.ascontiguousarray(rgb, np.uint8))
        size = _resized_size(img.height, img.width, self.resize)
        if size != (img.height, img.width):
            img = img.resize((size[1], size[0]), self.resample)
        x = np.asarray(img)
        if self.crop is not None:
            x = _center_crop(x, *self.crop)
        x = x.astype(np.float32) / np.float32(255.0)
        return (x - self.mean) / self.std


def _resized_size(h: int, w: int, resize: tuple[int, ...]) -> tuple[int, int]:
    if len(resize) == 2:
        return resize[0], resize[1]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = resize[0], int(resize[0] * long / short)
    return (new_long, new_short) if w <= h else (new_short, new_long)


def _center_crop(x: np.ndarray, ch: int, cw: int) -> np.ndarray:
    h, w = x.shape[:2]
    if ch > h or cw > w:  # torchvision pads with zeros (left/top get the smaller half)
        top, left = max(ch - h, 0) // 2, max(cw - w, 0) // 2
        x = np.pad(x, ((top, max(ch - h, 0) - top), (left, max(cw - w, 0) - left), (0, 0)))
        h, w = x.shape[:2]
    top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))
    return x[top:top + ch, left:left + cw]


def from_open_clip(transform) -> Preprocess:
    """The Preprocess equal to an open_clip evaluation transform, or NotPortedError."""
    from open_clip.transform import MaybeConvertMode, MaybeToTensor
    from torchvision import transforms
    from torchvision.transforms.functional import pil_modes_mapping

    steps = list(getattr(transform, "transforms", []))
    kinds = [type(s) for s in steps]
    resize_t, crop_t, norm_t = transforms.Resize, transforms.CenterCrop, transforms.Normalize
    if kinds not in ([resize_t, crop_t, MaybeConvertMode, MaybeToTensor, norm_t],
                     [resize_t, MaybeConvertMode, MaybeToTensor, norm_t]):
        raise NotPortedError(f"image transform {[k.__name__ for k in kinds]}")
    resize, normalize = steps[0], steps[-1]
    if resize.max_size is not None or resize.interpolation not in pil_modes_mapping:
        raise NotPortedError(f"Resize(max_size={resize.max_size}, interpolation={resize.interpolation})")
    size = (resize.size,) if isinstance(resize.size, int) else tuple(resize.size)
    crop = tuple(steps[1].size) if len(steps) == 5 else None
    if getattr(steps[2], "mode", "RGB") != "RGB":
        raise NotPortedError(f"conversion to image mode {steps[2].mode}")
    return Preprocess(size, pil_modes_mapping[resize.interpolation], crop,
                      np.asarray(normalize.mean, np.float32), np.asarray(normalize.std, np.float32))
