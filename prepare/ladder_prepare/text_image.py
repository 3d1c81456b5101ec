"""`ladder prepare text-image`: image-caption pairs -> a ladder-latents/v2 training set.

Sharded, idempotent and restart-safe, so N indexed workers (a JobSet) can run it:
- The source's parts are a fixed list; worker w of N takes parts k with k % N == w.
- A part is written to local staging, uploaded whole, then committed by its marker
  (``parts/part-NNNNNN.json``). A re-run skips committed parts and redoes the others from the
  start, so an interrupted worker leaves neither duplicate nor missing examples.
- ``prepare.json`` records the settings (encoders and their hashes, sizes, source, part count);
  a worker whose settings differ refuses to add parts rather than mix two datasets.
- Whichever worker finds every part committed writes ``manifest.json`` (deterministic content,
  so two writing it at once write the same bytes): the dataset exists from then on.
Undecodable images and missing captions or images are skipped, counted per reason in the part's
marker and the manifest, with the first keys of each reason for finding them.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ladder_api import storage
from ladder_api.errors import UserError
from ladder_prepare import images
from ladder_prepare.sources import UNDECODABLE, Item
from ladder_trainer.data import format as fmt

KEYS_KEPT = 20  # skipped keys recorded per reason and part


class Progress:
    """Callbacks for a progress display; the CLI plugs rich in, tests use this silent one."""

    def start(self, parts: int) -> None: ...
    def part(self, k: int, label: str) -> None: ...
    def items(self, n: int) -> None: ...
    def part_done(self, k: int, skipped_as_committed: bool) -> None: ...
    def close(self) -> None: ...


@dataclass
class Options:
    output: str
    worker_index: int = 0
    num_workers: int = 1
    batch_size: int = 32
    dtype: str = "float16"
    decode_threads: int = 4
    staging_dir: str | None = None


@dataclass
class Summary:
    parts_written: list[int] = field(default_factory=list)
    parts_already_committed: list[int] = field(default_factory=list)
    examples_written: int = 0
    skipped: collections.Counter = field(default_factory=collections.Counter)
    manifest: fmt.Manifest | None = None
    parts_missing: int = 0  # parts other workers have not committed yet


def my_parts(num_parts: int, worker_index: int, num_workers: int) -> list[int]:
    if num_workers < 1 or not 0 <= worker_index < num_workers:
        raise UserError(
            f"--worker-index {worker_index} must be in 0..{num_workers - 1} (--num-workers {num_workers})"
        )
    return list(range(worker_index, num_parts, num_workers))


def settings(source, encoder, text, layout: fmt.Layout) -> dict:
    """What fixes the content of every part: two workers may only share an output if equal."""
    return {
        "format": fmt.FORMAT,
        "image_size": encoder.image_size,
        "layout": layout.to_json(),
        "autoencoder": encoder.identity(),
        "text_encoder": text.identity(),
        "source": source.describe(),
        "num_parts": source.num_parts(),
        "preprocessing": "centre crop to square, PIL bicubic resize",
    }


def check_settings(output: str, wanted: dict) -> None:
    uri = storage.join(output, fmt.SETTINGS)
    text = json.dumps(wanted, indent=1, sort_keys=True) + "\n"
    try:
        storage.write_text(uri, text, exclusive=True)
        return
    except FileExistsError:
        pass
    have = json.loads(storage.read_text(uri))
    if have != json.loads(text):
        diff = sorted(k for k in set(have) | set(wanted) if have.get(k) != wanted.get(k))
        raise UserError(
            f"{output} already holds a preparation made with other settings ({', '.join(diff)} "
            f"differ; see {uri}): use another output, or delete it to start over"
        )


def run(source, encoder, text, options: Options, progress: Progress | None = None) -> Summary:
    """This worker's parts of `source`, encoded and committed; the manifest if all are now done."""
    progress = progress or Progress()
    layout = fmt.Layout(encoder.latent_shape, (text.tokens, text.width), options.dtype)
    wanted = settings(source, encoder, text, layout)
    check_settings(options.output, wanted)
    if not storage.exists(storage.join(options.output, fmt.NULL_CONTEXT)):
        fmt.write_null_context(options.output, text.null())
    fingerprint = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:16]
    summary = Summary()
    mine = my_parts(source.num_parts(), options.worker_index, options.num_workers)
    progress.start(len(mine))
    with tempfile.TemporaryDirectory(prefix="ladder-prepare-", dir=options.staging_dir) as staging:
        for k in mine:
            name = fmt.part_name(k)
            progress.part(k, source.part_label(k))
            if fmt.read_marker(options.output, name) is not None:
                summary.parts_already_committed.append(k)
                progress.part_done(k, True)
                continue
            marker = write_part(source, k, encoder, text, layout, options, staging, progress)
            marker.update(fingerprint=fingerprint, source=source.part_label(k))
            writer = marker.pop("_writer")
            writer.commit(options.output, name, marker)
            summary.parts_written.append(k)
            summary.examples_written += writer.count
            summary.skipped.update(marker["skipped"])
            progress.part_done(k, False)
    progress.close()
    summary.manifest, summary.parts_missing = finalize(options.output, source.num_parts(), wanted)
    return summary


def decoded(items: Iterator[Item], size: int, channels: int, threads: int) -> Iterator[tuple[Item, object]]:
    """(item, uint8 image or the reason it has none), in order, decoding `threads` at a time with a
    bounded window (a tar's items are never all in memory)."""

    def work(item: Item):
        if item.problem:
            return item, item.problem
        try:
            return item, images.to_uint8(item.image_bytes(), size, channels)
        except images.Undecodable as err:
            return item, f"{UNDECODABLE}: {err}"

    window: collections.deque = collections.deque()
    with ThreadPoolExecutor(threads) as pool:
        for item in items:
            window.append(pool.submit(work, item))
            if len(window) >= 2 * threads:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def write_part(source, k, encoder, text, layout, options, staging, progress) -> dict:
    writer = fmt.PartWriter(layout, os.path.join(staging, f"part-{k}.npy"))
    skipped: collections.Counter = collections.Counter()
    keys: dict[str, list[str]] = {}
    batch: list[tuple[Item, np.ndarray]] = []

    def flush():
        if batch:
            latents = encoder.encode(np.stack([img for _, img in batch]), pad_to=options.batch_size)
            captions = [c for item, _ in batch for c in item.captions]
            repeat = [len(item.captions) for item, _ in batch]
            writer.write(np.repeat(latents, repeat, axis=0), text.encode(captions))
            batch.clear()

    try:
        for item, img in decoded(
            source.items(k), encoder.image_size, encoder.channels, options.decode_threads
        ):
            progress.items(1)
            if isinstance(img, str):
                reason = img.split(":", 1)[0]
                skipped[reason] += 1
                kept = keys.setdefault(reason, [])
                if len(kept) < KEYS_KEPT:
                    kept.append(f"{item.key}: {img}" if reason == UNDECODABLE else item.key)
                continue
            batch.append((item, img))
            if len(batch) >= options.batch_size:
                flush()
        flush()
    except BaseException:
        writer.abort()
        raise
    return {"skipped": dict(skipped), "skipped_keys": keys, "_writer": writer}


def finalize(output: str, num_parts: int, wanted: dict) -> tuple[fmt.Manifest | None, int]:
    """Write the manifest when every part is committed; (manifest or None, parts still missing)."""
    markers = [fmt.read_marker(output, fmt.part_name(k)) for k in range(num_parts)]
    missing = sum(m is None for m in markers)
    if missing:
        return None, missing
    skipped: collections.Counter = collections.Counter()
    for m in markers:
        skipped.update(m.get("skipped", {}))
    parts = tuple(fmt.Part(m["path"], int(m["num_examples"]), int(m["offset"])) for m in markers)
    manifest = fmt.Manifest(
        layout=fmt.Layout.from_json(wanted["layout"]),
        autoencoder=wanted["autoencoder"],
        text_encoder=wanted["text_encoder"],
        parts=parts,
        skipped=dict(skipped),
        extra={
            "image_size": wanted["image_size"],
            "source": wanted["source"],
            "preprocessing": wanted["preprocessing"],
        },
    )
    if manifest.num_examples == 0:
        raise UserError(f"{output}: every item was skipped ({dict(skipped)}); nothing to train on")
    fmt.write_manifest(output, manifest)
    return manifest, 0
