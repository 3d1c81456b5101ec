"""The on-disk format of training data: precomputed latents and text embeddings in npz shards.

A dataset is a directory (local path, file:// or gs://) holding:

  manifest.json
    {
      "format": "ladder-latents/v1",
      "num_examples": 1234,
      "latent_shape": [H, W, C],        # e.g. [64, 64, 4] for 512px images and the SD VAE
      "context_shape": [T, D],          # e.g. [77, 1024] for OpenCLIP ViT-H/14
      "autoencoder": {"kind": "sd-vae" | "identity", "scaling_factor": 0.18215},
      "text_encoder": "clip-vit-h14",
      "null_context": "null_context.npy",   # [T, D]: the embedding of the empty prompt
      "shards": [{"path": "shard-00000.npz", "num_examples": 1024}, ...]
    }
  shard-NNNNN.npz   arrays `latents` [n, H, W, C] (float16 or float32, already multiplied by the
                    autoencoder's scaling factor) and `context` [n, T, D]; optional `captions` [n].
  null_context.npy  float32 [T, D].

npz keeps the writer trivial (numpy only, any data-preparation job can produce it) and a shard is
one object read in one request on GCS; the reader random-accesses examples across shards through
grain, so shuffling is global and a position in the stream is just an integer.
"""

from __future__ import annotations

import io
import json
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from etils import epath

from ladder_api.storage import as_epath

FORMAT = "ladder-latents/v1"
MANIFEST = "manifest.json"
NULL_CONTEXT = "null_context.npy"


@dataclass(frozen=True)
class Manifest:
    num_examples: int
    latent_shape: tuple[int, int, int]
    context_shape: tuple[int, int]
    autoencoder: dict
    text_encoder: str
    null_context: str
    shards: tuple[tuple[str, int], ...]

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "num_examples": self.num_examples,
            "latent_shape": list(self.latent_shape),
            "context_shape": list(self.context_shape),
            "autoencoder": self.autoencoder,
            "text_encoder": self.text_encoder,
            "null_context": self.null_context,
            "shards": [{"path": p, "num_examples": n} for p, n in self.shards],
        }

    @classmethod
    def from_json(cls, d: dict) -> Manifest:
        if d.get("format") != FORMAT:
            raise ValueError(f"format is {d.get('format')!r}, expected {FORMAT!r}")
        shards = tuple((s["path"], int(s["num_examples"])) for s in d["shards"])
        if sum(n for _, n in shards) != int(d["num_examples"]):
            raise ValueError("num_examples does not equal the sum of the shards' num_examples")
        return cls(
            num_examples=int(d["num_examples"]),
            latent_shape=tuple(d["latent_shape"]),
            context_shape=tuple(d["context_shape"]),
            autoencoder=dict(d["autoencoder"]),
            text_encoder=str(d["text_encoder"]),
            null_context=str(d.get("null_context", NULL_CONTEXT)),
            shards=shards,
        )


def _write_bytes(p: epath.Path, data: bytes) -> None:
    p.write_bytes(data)


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_dataset(uri: str, latents, context, null_context, *, autoencoder: dict, text_encoder: str,
                  captions=None, shard_size: int = 1024) -> Manifest:
    """Write arrays as a dataset (what a data-preparation job does; tests use it too)."""
    latents, context = np.asarray(latents), np.asarray(context)
    if len(latents) != len(context):
        raise ValueError("latents and context must have the same number of examples")
    root = as_epath(uri)
    root.mkdir(parents=True, exist_ok=True)
    shards = []
    for i, start in enumerate(range(0, len(latents), shard_size)):
        name = f"shard-{i:05d}.npz"
        part = {"latents": latents[start:start + shard_size], "context": context[start:start + shard_size]}
        if captions is not None:
            part["captions"] = np.asarray(captions[start:start + shard_size], dtype=str)
        _write_bytes(root / name, _npz_bytes(**part))
        shards.append((name, len(part["latents"])))
    buf = io.BytesIO()
    np.save(buf, np.asarray(null_context, np.float32))
    _write_bytes(root / NULL_CONTEXT, buf.getvalue())
    manifest = Manifest(
        num_examples=len(latents),
        latent_shape=tuple(latents.shape[1:]),
        context_shape=tuple(context.shape[1:]),
        autoencoder=dict(autoencoder),
        text_encoder=text_encoder,
        null_context=NULL_CONTEXT,
        shards=tuple(shards),
    )
    (root / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2))
    return manifest


def read_manifest(uri: str) -> Manifest:
    return Manifest.from_json(json.loads((as_epath(uri) / MANIFEST).read_text()))


class ShardSource:
    """grain RandomAccessDataSource over a dataset's shards: example i -> {latents, context}.

    Shards are fetched whole and kept in a small LRU cache; global shuffling makes consecutive
    reads hit different shards, so the cache is sized to the number of shards when it is small.
    """

    def __init__(self, uri: str, manifest: Manifest | None = None, cache_shards: int = 16):
        self.uri = uri
        self.manifest = manifest or read_manifest(uri)
        self._starts = np.cumsum([0] + [n for _, n in self.manifest.shards])
        self._cache: OrderedDict[int, dict] = OrderedDict()
        self._cache_size = cache_shards

    def __len__(self) -> int:
        return self.manifest.num_examples

    def _shard(self, k: int) -> dict:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        data = (as_epath(self.uri) / self.manifest.shards[k][0]).read_bytes()
        with np.load(io.BytesIO(data)) as z:
            arrays = {"latents": z["latents"], "context": z["context"]}
        self._cache[k] = arrays
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return arrays

    def __getitem__(self, i: int) -> dict:
        i = int(i)
        k = int(np.searchsorted(self._starts, i, side="right") - 1)
        shard = self._shard(k)
        j = i - int(self._starts[k])
        return {"latents": shard["latents"][j], "context": shard["context"][j]}

    def null_context(self) -> np.ndarray:
        return np.load(io.BytesIO((as_epath(self.uri) / self.manifest.null_context).read_bytes()))


class ArraySource:
    """In-memory source with the same interface (the bundled digits)."""

    def __init__(self, latents: np.ndarray, context: np.ndarray):
        self.latents, self.context = latents, context

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, i: int) -> dict:
        return {"latents": self.latents[int(i)], "context": self.context[int(i)]}
