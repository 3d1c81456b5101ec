"""`ladder prepare text-image`: WebDataset tars, an image folder with a JSONL and COCO, encoded by a
real (small, random) AutoencoderKL through the same loader as SD's, written as ladder-latents/v2,
read back by the trainer; sharded workers, interruption and re-runs, skipped items, config errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ladder_api.errors import UserError
from ladder_api.loading import load_experiment
from ladder_api.plan import expand
from ladder_cli.main import main as ladder
from ladder_prepare import autoencoding, images, sources, text_encoders, text_image
from ladder_prepare.target import Target
from ladder_trainer.data.builtin_text import BuiltinTextEncoder
from ladder_trainer.data.format import read_manifest
from ladder_trainer.data.reader import open_data

from .conftest import DiesInPart, KilledError, coco, image_folder, spec_file, webdataset_shards


def opened(spec_path, uri):
    run = expand(load_experiment(spec_path)).runs[0]
    return open_data(run.data.model_copy(update={"train_uri": uri}), run.model)


def test_webdataset_by_two_workers_then_the_trainer_reads_it(tmp_path, vae_spec, capsys):
    shards = webdataset_shards(tmp_path / "shards")
    out = str(tmp_path / "train")
    args = [
        "prepare",
        "text-image",
        vae_spec,
        "--webdataset",
        str(shards),
        "--output",
        out,
        "--num-workers",
        "2",
    ]
    assert ladder([*args, "--worker-index", "1"]) == 0
    assert "1 parts are not committed yet" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        read_manifest(out)  # not a dataset until the last part is committed
    assert ladder([*args, "--worker-index", "0"]) == 0
    said = capsys.readouterr().out
    assert "manifest written: 11 examples in 2 parts" in said
    assert "missing caption 1, missing image 1, undecodable image 1" in said

    m = read_manifest(out)
    assert m.skipped == {"undecodable image": 1, "missing caption": 1, "missing image": 1}
    assert m.latent_shape == (8, 8, 4) and m.context_shape == (4, 32) and m.layout.dtype == "float16"
    assert m.autoencoder["hash"].startswith("sha256:") and m.text_encoder["name"] == "builtin-digits"
    assert m.extra["image_size"] == 16
    marker = json.loads((tmp_path / "train" / "parts" / "part-000000.json").read_text())
    [why] = marker["skipped_keys"]["undecodable image"]
    assert why.startswith(f"{shards}/00000.tar:corrupt: undecodable image: UnidentifiedImageError")

    # Example 0 is shard 0's first digit: its latents are the autoencoder's encoding of the centre
    # crop, its context the caption's embedding.
    data = opened(vae_spec, out)
    assert len(data.source) == 11
    target = Target.from_spec(load_experiment(vae_spec).spec)
    enc = autoencoding.load(target)
    first = next(sources.WebDataset([str(shards)]).items(0))
    want = enc.encode(images.to_uint8(first.image_bytes(), 16)[None])[0]
    got = data.source[0]
    np.testing.assert_allclose(got["latents"].astype(np.float32), want, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(
        got["context"].astype(np.float32),
        BuiltinTextEncoder(32, 4).encode_one(first.captions[0]),
        rtol=1e-3,
        atol=1e-3,
    )
    np.testing.assert_allclose(data.null_context, BuiltinTextEncoder(32, 4).null(), rtol=1e-6)


def test_an_interrupted_worker_resumes_without_duplicates_or_gaps(tmp_path, vae_spec):
    shards = webdataset_shards(tmp_path / "shards", counts=(4, 3, 5), bad=False)
    target = Target.from_spec(load_experiment(vae_spec).spec)
    enc = autoencoding.load(target)
    text = text_encoders.load(target.text_encoder, 32, 4)
    src = sources.WebDataset([str(shards)])

    clean = str(tmp_path / "clean")
    text_image.run(src, enc, text, text_image.Options(clean, batch_size=2))
    out = str(tmp_path / "resumed")
    with pytest.raises(KilledError):
        text_image.run(DiesInPart(src, 1, 2), enc, text, text_image.Options(out, batch_size=2))
    assert (tmp_path / "resumed" / "parts" / "part-000000.json").exists()
    assert not (tmp_path / "resumed" / "parts" / "part-000001.json").exists()
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    summary = text_image.run(src, enc, text, text_image.Options(out, batch_size=2))
    assert summary.parts_already_committed == [0] and summary.parts_written == [1, 2]
    a, b = opened(vae_spec, clean).source, opened(vae_spec, out).source
    assert len(a) == len(b) == 12
    everything = np.arange(12)
    for key in ("latents", "context"):
        np.testing.assert_array_equal(a.read(everything)[key], b.read(everything)[key])
    again = text_image.run(src, enc, text, text_image.Options(out, batch_size=2))
    assert again.parts_written == [] and again.manifest.num_examples == 12

    with pytest.raises(UserError, match="other settings .*layout"):
        text_image.run(src, enc, text, text_image.Options(out, dtype="float32"))


def test_image_folder_and_coco_layouts(tmp_path, vae_spec, capsys):
    img, jsonl = image_folder(tmp_path / "folder")
    out = str(tmp_path / "from-folder")
    assert (
        ladder(
            [
                "prepare",
                "text-image",
                vae_spec,
                "--images",
                str(img),
                "--captions",
                str(jsonl),
                "--output",
                out,
                "--part-size",
                "3",
            ]
        )
        == 0
    )
    m = read_manifest(out)
    assert [p.num_examples for p in m.parts] == [3, 2, 1]  # d3 has no caption, gone.png is missing
    assert m.skipped == {"missing caption": 1, "missing image": 1}

    ann, val = coco(tmp_path / "coco")
    out = str(tmp_path / "from-coco")
    assert (
        ladder(
            [
                "prepare",
                "text-image",
                vae_spec,
                "--coco",
                str(ann),
                "--images",
                str(val),
                "--output",
                out,
                "--dtype",
                "float32",
            ]
        )
        == 0
    )
    m = read_manifest(out)
    assert m.num_examples == 1 + 2 + 3 + 1 and m.skipped == {"missing caption": 1}
    data = opened(vae_spec, out).source.read(np.arange(7))
    # Image 1's two captions share its latent and differ in context.
    np.testing.assert_array_equal(data["latents"][1], data["latents"][2])
    assert not np.array_equal(data["context"][1], data["context"][2])


def test_configuration_errors_exit_2_naming_the_field(tmp_path, small_autoencoder, capsys):
    shards = webdataset_shards(tmp_path / "shards", counts=(2,), bad=False)
    base = ["prepare", "text-image", None, "--webdataset", str(shards), "--output", str(tmp_path / "o")]

    def run(**kw):
        base[2] = spec_file(tmp_path / "exp.yaml", **kw)
        code = ladder(base)
        return code, capsys.readouterr().err

    vae = {"kind": "sd-vae", "weightsUri": str(small_autoencoder), "scalingFactor": 0.5}
    code, err = run(autoencoder=vae, ladder={"latentChannels": 3})
    assert code == 2 and "4 latent channels but ladder.latentChannels is 3" in err
    code, err = run(autoencoder={**vae, "scalingFactor": 0.18215})
    assert code == 2 and "set data.autoencoder.scalingFactor: 0.5" in err
    code, err = run(autoencoder={**vae, "hash": "sha256:" + "1" * 64})
    assert code == 2 and "data.autoencoder.hash is sha256:111" in err
    code, err = run(autoencoder=vae, text_encoder={"name": "all-minilm-l6-v2", "weightsUri": str(tmp_path)})
    assert code == 2 and "384-wide embeddings but ladder.contextDim is 32" in err
    code, err = run(autoencoder={**vae, "weightsUri": str(tmp_path / "nothing")})
    assert code == 2 and "nothing/config.json: not found" in err
    base[3:5] = ["--coco", str(tmp_path / "none.json")]
    code, err = run(autoencoder=vae)
    assert code == 2 and "--coco needs --images" in err
