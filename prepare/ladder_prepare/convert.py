"""`ladder prepare convert-v1 SRC DST`: a ladder-latents/v1 set (npz shards, read whole) rewritten
as v2 records, one part per shard, in the same order. v1 recorded no weight hashes, so the
converted manifest has none: a spec that sets data.*.hash refuses it until the data is prepared
again with `ladder prepare text-image`."""

from __future__ import annotations

import io
import json
import os
import tempfile

import numpy as np

from ladder_api import storage
from ladder_api.errors import UserError
from ladder_trainer.data import format as fmt


def _v1_manifest(src: str) -> dict:
    try:
        d = json.loads(storage.read_text(storage.join(src, fmt.MANIFEST)))
    except FileNotFoundError:
        raise UserError(f"{src}: no manifest.json there") from None
    if d.get("format") != "ladder-latents/v1":
        raise UserError(f"{src}: format {d.get('format')!r}, not ladder-latents/v1")
    return d


def convert_v1(src: str, dst: str, dtype: str = "float32") -> fmt.Manifest:
    d = _v1_manifest(src)
    layout = fmt.Layout(tuple(d["latent_shape"]), tuple(d["context_shape"]), dtype)
    parts = []
    with tempfile.TemporaryDirectory(prefix="ladder-convert-") as tmp:
        for k, shard in enumerate(d["shards"]):
            name = fmt.part_name(k)
            marker = fmt.read_marker(dst, name)
            if marker is None:
                with np.load(io.BytesIO(storage.read_bytes(storage.join(src, shard["path"])))) as z:
                    writer = fmt.PartWriter(layout, os.path.join(tmp, f"{k}.npy"))
                    writer.write(z["latents"], z["context"])
                parts.append(writer.commit(dst, name, {"source": shard["path"], "skipped": {}}))
            else:
                parts.append(fmt.Part(marker["path"], int(marker["num_examples"]), int(marker["offset"])))
    null = np.load(io.BytesIO(storage.read_bytes(storage.join(src, d.get("null_context", fmt.NULL_CONTEXT)))))
    fmt.write_null_context(dst, null)
    text = d["text_encoder"]
    manifest = fmt.Manifest(
        layout,
        {**d["autoencoder"], "hash": None},
        {"name": text, "hash": None} if isinstance(text, str) else dict(text),
        tuple(parts),
        extra={"converted_from": {"uri": src, "format": "ladder-latents/v1"}},
    )
    fmt.write_manifest(dst, manifest)
    return manifest
