"""`ladder prepare convert-v1`: a ladder-latents/v1 set (npz shards, as the old writer made them)
rewritten as v2, same examples in the same order; the trainer then reads it."""

from __future__ import annotations

import io
import json

import numpy as np

from ladder_cli.main import main as ladder
from ladder_trainer.data.format import read_manifest
from ladder_trainer.data.records import RecordSource


def write_v1(root, latents, context):
    root.mkdir(parents=True)
    shards = []
    for i, start in enumerate(range(0, len(latents), 4)):
        buf = io.BytesIO()
        np.savez(buf, latents=latents[start : start + 4], context=context[start : start + 4])
        (root / f"shard-{i:05d}.npz").write_bytes(buf.getvalue())
        shards.append({"path": f"shard-{i:05d}.npz", "num_examples": len(latents[start : start + 4])})
    np.save(root / "null_context.npy", np.ones((4, 32), np.float32))
    (root / "manifest.json").write_text(
        json.dumps(
            {
                "format": "ladder-latents/v1",
                "num_examples": len(latents),
                "latent_shape": [8, 8, 1],
                "context_shape": [4, 32],
                "autoencoder": {"kind": "identity"},
                "text_encoder": "builtin-digits",
                "null_context": "null_context.npy",
                "shards": shards,
            }
        )
    )


def test_convert_v1_keeps_every_example_in_order(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lat = rng.standard_normal((10, 8, 8, 1)).astype(np.float32)
    ctx = rng.standard_normal((10, 4, 32)).astype(np.float32)
    write_v1(tmp_path / "old", lat, ctx)
    assert ladder(["prepare", "convert-v1", str(tmp_path / "old"), str(tmp_path / "new")]) == 0
    assert "10 examples in 3 parts" in capsys.readouterr().out
    m = read_manifest(str(tmp_path / "new"))
    assert m.text_encoder == {"name": "builtin-digits", "hash": None} and m.layout.dtype == "float32"
    got = RecordSource(str(tmp_path / "new")).read(np.arange(10))
    np.testing.assert_array_equal(got["latents"], lat)
    np.testing.assert_array_equal(got["context"], ctx)
    assert ladder(["prepare", "convert-v1", str(tmp_path / "new"), str(tmp_path / "x")]) == 2
    assert "not ladder-latents/v1" in capsys.readouterr().err
