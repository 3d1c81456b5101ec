"""`ladder prepare reference`: the evaluator's prompts file and its reference images, drawn alike.

The paper's protocol (COCO-2014 val, 30k): N images drawn with a recorded seed, one caption per
image (also drawn), the captions embedded by the experiment's text encoder. The same images,
centre-cropped and resized exactly as training images are (``images.to_uint8``) to the resolution
the evaluator generates at, are what FID's reference statistics are computed on; this module
yields them in batches and the caller (the CLI) computes the statistics with the evaluator's own
feature path, so generated and reference images meet the same resize and network.

The prompts file is the .npz the evaluator reads (ladder_evaluator.prompts): ``captions`` [N],
``context`` [N, T, D] (float16: 4.7 GB rather than 9.5 GB for 30k x 77 x 1024), ``uncond``
[T, D], plus ``keys`` [N] (which image each prompt came from) and ``meta`` (JSON: encoder
identity and hash, seed, source). An image that does not decode is passed over and the next one
in the seeded order taken, so N stays N; which were passed over is recorded.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ladder_api import storage
from ladder_api.errors import UserError
from ladder_prepare import images
from ladder_prepare.sources import Entry


@dataclass
class Drawn:
    entries: list[Entry]  # in the seeded order, N of them once decoding has been checked
    captions: list[str]
    skipped: list[str] = field(default_factory=list)  # keys passed over (undecodable, missing)


def draw_order(entries: list[Entry], seed: int) -> tuple[list[Entry], list[str]]:
    """Captioned entries in a seeded random order, each with one of its captions drawn."""
    eligible = [e for e in entries if e.captions]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(eligible))
    picks = rng.integers(0, 1 << 30, size=len(eligible))
    chosen = [eligible[i] for i in order]
    return chosen, [e.captions[int(p) % len(e.captions)] for e, p in zip(chosen, picks, strict=True)]


def reference_images(
    entries: list[Entry], captions: list[str], num: int, size: int, channels: int, batch: int = 64
) -> Iterator[tuple[np.ndarray, list[str], list[str], list[str]]]:
    """Batches of (uint8 images, their captions, their keys, keys passed over), N images in all."""
    if num > len(entries):
        raise UserError(f"--num {num}: the source has only {len(entries)} captioned images")
    taken, buf, caps, keys, passed = 0, [], [], [], []
    for e, c in zip(entries, captions, strict=True):
        if taken == num:
            break
        try:
            buf.append(images.to_uint8(storage.read_bytes(e.path), size, channels))
        except (FileNotFoundError, images.Undecodable):
            passed.append(e.key)
            continue
        caps.append(c)
        keys.append(e.key)
        taken += 1
        if len(buf) == batch or taken == num:
            yield np.stack(buf), caps, keys, passed
            buf, caps, keys, passed = [], [], [], []
    if taken < num:
        raise UserError(f"--num {num}: only {taken} images of the source decode")


def prepare(
    entries: list[Entry],
    num: int,
    seed: int,
    size: int,
    channels: int,
    text,
    features: Callable[[np.ndarray], np.ndarray] | None,
    progress: Callable[[int], None] = lambda n: None,
) -> tuple[dict, np.ndarray | None]:
    """(prompts arrays, reference features or None). `features`: uint8 batch -> [n, dim]."""
    order, captions = draw_order(entries, seed)
    got_caps, got_keys, passed, feats = [], [], [], []
    for u8, caps, keys, skipped in reference_images(order, captions, num, size, channels):
        if features is not None:
            feats.append(features(u8))
        got_caps += caps
        got_keys += keys
        passed += skipped
        progress(len(u8))
    context = text.encode(got_caps)
    meta = {
        "seed": seed,
        "num": num,
        "image_size": size,
        "text_encoder": text.identity(),
        "passed_over": passed,
        "preprocessing": "centre crop to square, PIL bicubic resize",
    }
    arrays = {
        "captions": np.array(got_caps),
        "keys": np.array(got_keys),
        "context": context.astype(np.float16),
        "uncond": text.null().astype(np.float32),
        "meta": np.array(json.dumps(meta, sort_keys=True)),
    }
    return arrays, (np.concatenate(feats) if feats else None)


def write_npz(uri: str, arrays: dict) -> str:
    """Write an uncompressed .npz (the evaluator memory-maps its context) through a local file, so
    gigabytes of embeddings are never copied into one bytes object; returns sha256:<hex> of
    exactly the bytes written (what the evaluator hashes)."""
    with tempfile.TemporaryDirectory(prefix="ladder-npz-") as tmp:
        path = Path(tmp) / "prompts.npz"
        np.savez(path, **arrays)
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(16 << 20):
                h.update(chunk)
        storage.upload_file(path, uri)
    return "sha256:" + h.hexdigest()
