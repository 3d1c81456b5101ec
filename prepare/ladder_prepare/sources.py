"""Where image-caption pairs come from, split into parts: the units of work and of commit.

Three layouts, the ones users have:
- ``WebDataset``: tar shards as img2dataset writes them (LAION, COCO): consecutive members
  ``{key}.jpg|jpeg|png|webp`` and ``{key}.txt`` (the caption) or ``{key}.json`` (its "caption",
  else "text"). One part per tar, read as a stream (a shard never sits in memory whole).
- ``ImageFolder``: a folder or bucket of images plus a captions JSONL, one object per line:
  ``{"file": "<path under the folder>", "caption": "..."}``. Parts of `part_size` lines.
- ``Coco``: COCO's ``captions_*.json`` plus its image folder; one item per image with all its
  captions (each becomes an example sharing the image's latent). Parts of `part_size` images.

The list of parts is a pure function of the inputs, so every worker of a preparation computes the
same list and takes parts k with k % num_workers == worker_index.
"""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ladder_api import storage
from ladder_api.errors import UserError
from ladder_prepare.images import IMAGE_EXTENSIONS

MISSING_IMAGE = "missing image"
MISSING_CAPTION = "missing caption"
UNDECODABLE = "undecodable image"


@dataclass(frozen=True)
class Item:
    """One image and its captions; `problem` says why it cannot become examples (then skipped)."""

    key: str
    captions: tuple[str, ...]
    image: bytes | Callable[[], bytes] | None
    problem: str | None = None

    def image_bytes(self) -> bytes:
        return self.image() if callable(self.image) else self.image


@dataclass(frozen=True)
class Entry:
    """An item without its image: what selecting a reference set needs."""

    key: str
    captions: tuple[str, ...]
    path: str | None  # the image's URI (folder and COCO sources)


def expand_braces(pattern: str) -> list[str]:
    """`shards/{00000..00003}.tar` -> the four names (img2dataset's and webdataset's notation)."""
    m = re.search(r"\{(\d+)\.\.(\d+)\}", pattern)
    if not m:
        return [pattern]
    lo, hi, width = int(m.group(1)), int(m.group(2)), len(m.group(1))
    head, tail = pattern[: m.start()], pattern[m.end() :]
    return [name for i in range(lo, hi + 1) for name in expand_braces(f"{head}{i:0{width}d}{tail}")]


def _caption(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


class WebDataset:
    kind = "webdataset"

    def __init__(self, uris: list[str]):
        names: list[str] = []
        for uri in uris:
            for u in expand_braces(uri):
                names.extend(
                    [u] if u.endswith(".tar") else [f for f in storage.list_files(u) if f.endswith(".tar")]
                )
        if not names:
            raise UserError(f"--webdataset {' '.join(uris)}: no .tar shards there")
        self.tars = sorted(set(names))

    def describe(self) -> dict:
        return {"kind": self.kind, "shards": len(self.tars), "first": self.tars[0], "last": self.tars[-1]}

    def num_parts(self) -> int:
        return len(self.tars)

    def part_label(self, k: int) -> str:
        return self.tars[k]

    def items(self, k: int) -> Iterator[Item]:
        uri = self.tars[k]
        try:
            with storage.open_read(uri) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
                yield from _samples(tar, uri)
        except FileNotFoundError:
            raise UserError(f"{uri}: not found (listed when the preparation started)") from None
        except tarfile.TarError as err:
            raise UserError(f"{uri}: not a readable tar file ({err})") from None


def _samples(tar, uri: str) -> Iterator[Item]:
    """Group consecutive members by key (webdataset's rule: the name up to the first dot)."""
    key, files = None, {}
    for member in tar:
        if not member.isfile():
            continue
        folder, _, base = member.name.rpartition("/")
        stem, _, ext = base.partition(".")
        k = f"{folder}/{stem}" if folder else stem
        if k != key:
            if key is not None:
                yield _sample(key, files, uri)
            key, files = k, {}
        files[ext.lower()] = tar.extractfile(member).read()
    if key is not None:
        yield _sample(key, files, uri)


def _sample(key: str, files: dict[str, bytes], uri: str) -> Item:
    image = next((files[e] for e in IMAGE_EXTENSIONS if e in files), None)
    caption = None
    if "txt" in files:
        caption = _caption(files["txt"].decode("utf-8", "replace"))
    elif "json" in files:
        try:
            meta = json.loads(files["json"])
            caption = _caption(meta.get("caption") or meta.get("text")) if isinstance(meta, dict) else None
        except ValueError:
            caption = None
    label = f"{uri}:{key}"
    if image is None:
        return Item(label, (), None, MISSING_IMAGE)
    if caption is None:
        return Item(label, (), None, MISSING_CAPTION)
    return Item(label, (caption,), image)


class _Listed:
    """Sources whose items are listed up front (a JSONL or COCO's JSON): parts are slices."""

    kind = "listed"

    def __init__(self, entries: list[Entry], part_size: int):
        if part_size <= 0:
            raise UserError(f"--part-size must be positive, got {part_size}")
        self.entries, self.part_size = entries, part_size

    def num_parts(self) -> int:
        return max(1, -(-len(self.entries) // self.part_size))

    def part_label(self, k: int) -> str:
        lo = k * self.part_size
        return f"items {lo}..{min(lo + self.part_size, len(self.entries)) - 1}"

    def items(self, k: int) -> Iterator[Item]:
        for e in self.entries[k * self.part_size : (k + 1) * self.part_size]:
            if not e.captions:
                yield Item(e.key, (), None, MISSING_CAPTION)
                continue
            try:
                data = storage.read_bytes(e.path)
            except FileNotFoundError:
                yield Item(e.key, (), None, MISSING_IMAGE)
                continue
            yield Item(e.key, e.captions, data)


def _read_json_text(uri: str, flag: str) -> str:
    try:
        return storage.read_text(uri)
    except FileNotFoundError:
        raise UserError(f"{flag} {uri}: not found") from None


class ImageFolder(_Listed):
    kind = "image-folder"

    def __init__(self, images: str, captions: str, part_size: int = 10_000):
        entries = []
        for n, line in enumerate(_read_json_text(captions, "--captions").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                name = row["file"]
            except (ValueError, KeyError, TypeError):
                raise UserError(
                    f'--captions {captions} line {n}: expected a JSON object with "file" and '
                    f'"caption"; got {line[:120]!r}'
                ) from None
            cap = _caption(row.get("caption")) if isinstance(row.get("caption"), str) else None
            entries.append(Entry(name, (cap,) if cap else (), storage.join(images, name)))
        super().__init__(entries, part_size)
        self.images, self.captions = images, captions

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "images": self.images,
            "captions": self.captions,
            "items": len(self.entries),
        }


class Coco(_Listed):
    kind = "coco"

    def __init__(self, annotations: str, images: str, part_size: int = 10_000):
        try:
            doc = json.loads(_read_json_text(annotations, "--coco"))
            files = {int(im["id"]): im["file_name"] for im in doc["images"]}
            anns = sorted(doc["annotations"], key=lambda a: (int(a["image_id"]), int(a.get("id", 0))))
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(
                f"--coco {annotations}: not COCO captions JSON (images[].id/file_name, "
                f"annotations[].image_id/caption): {err}"
            ) from None
        caps: dict[int, list[str]] = {}
        for a in anns:
            c = _caption(a.get("caption"))
            if c:
                caps.setdefault(int(a["image_id"]), []).append(c)
        entries = [
            Entry(files[i], tuple(caps.get(i, ())), storage.join(images, files[i])) for i in sorted(files)
        ]
        super().__init__(entries, part_size)
        self.annotations, self.images = annotations, images

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "annotations": self.annotations,
            "images": self.images,
            "items": len(self.entries),
        }
