"""`ladder prepare reference`: prompts drawn with a recorded seed, one caption per image, and FID
statistics of exactly those images through the evaluator's own feature path; both hashed, and
the evaluator reads the prompts file and records the hashes in every result."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np

from ladder_api.grid import GridPoint
from ladder_api.loading import load_experiment
from ladder_api.plan import expand
from ladder_cli.main import main as ladder
from ladder_evaluator import evaluate
from ladder_evaluator import prompts as prompts_mod
from ladder_evaluator.metrics import digits_classifier, fid
from ladder_prepare import images

from .conftest import coco, spec_file


def pixel_spec(tmp_path):
    """Pixel space like the quickstart: 8x8 greyscale, digits-classifier FID features."""
    path = spec_file(
        tmp_path / "exp.yaml",
        autoencoder={"kind": "identity"},
        ladder={"latentChannels": 1, "latentSize": 8},
        data={
            "referenceSet": {
                "uri": str(tmp_path / "ref" / "prompts.npz"),
                "statsUri": str(tmp_path / "ref" / "stats.npz"),
            }
        },
    )
    doc = load_experiment(path).model_dump(by_alias=True, mode="json", exclude_none=True)
    doc["spec"]["evaluation"] = {"fidFeatures": "digits-classifier", "metrics": ["fid"], "numSamples": 2,
                                 "batchSize": 2}  # one sample per prompt: the set holds a few
    import yaml

    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(doc))
    return path


def sha(path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_reference_prompts_and_statistics_of_the_same_drawn_images(tmp_path, capsys):
    ann, val = coco(tmp_path / "coco", n=6)
    (val / "COCO_val2014_000000000002.jpg").write_bytes(b"not an image")  # passed over if drawn
    spec = pixel_spec(tmp_path)
    cache = str(tmp_path / "cache")
    args = [
        "prepare",
        "reference",
        spec,
        "--coco",
        str(ann),
        "--images",
        str(val),
        "--num",
        "3",
        "--seed",
        "7",
        "--cache-dir",
        cache,
    ]
    assert ladder(args) == 0
    ref = tmp_path / "ref"
    record = json.loads((ref / "reference.json").read_text())
    assert record["prompts"]["sha256"] == sha(ref / "prompts.npz")
    assert record["stats"]["sha256"] == sha(ref / "stats.npz")
    assert record["stats"]["image_size"] == 8 and record["stats"]["features"] == "digits-classifier"

    with np.load(ref / "prompts.npz") as z:
        keys, captions = list(z["keys"]), list(z["captions"])
    doc = json.loads((tmp_path / "coco" / "captions_val2014.json").read_text())
    by_file = {im["file_name"]: im["id"] for im in doc["images"]}
    for key, caption in zip(keys, captions, strict=True):
        assert key != "COCO_val2014_000000000002.jpg"
        assert caption in {a["caption"] for a in doc["annotations"] if a["image_id"] == by_file[key]}
    assert len(set(keys)) == 3

    # The statistics are those of exactly these images, prepared as training images are, through
    # the evaluator's feature path.
    u8 = np.stack([images.to_uint8((val / k).read_bytes(), 8, 1) for k in keys])
    extractor = digits_classifier.extractor(cache)
    mu, sigma = fid.statistics(fid.features(images.to_model_space(u8), extractor))
    got_mu, got_sigma = fid.load_stats(str(ref / "stats.npz"), extractor.dim)
    np.testing.assert_allclose(got_mu, mu, rtol=1e-6)
    np.testing.assert_allclose(got_sigma, sigma, rtol=1e-6, atol=1e-9)

    # The evaluator reads the file as written and records both hashes in every result.
    run = expand(load_experiment(spec), output_uri=str(tmp_path / "runs")).runs[0]  # a local cache_dir
    loaded = prompts_mod.load(run)
    assert list(loaded.captions) == captions and loaded.context.shape == (3, 4, 32)
    assert loaded.sha256 == record["prompts"]["sha256"]
    shutil.copytree(cache, evaluate.cache_dir(run), dirs_exist_ok=True)  # the classifier prepare trained
    scorers = evaluate.Scorers.build(run, loaded)
    result = evaluate.results_for(
        run, 4, GridPoint("ddim", 2, 1.0), {"fid-digits-classifier": {"value": 1.0}}, scorers.recorded
    )[0]
    assert result.settings["referencePromptsSha256"] == record["prompts"]["sha256"]
    assert result.settings["referenceStats"] == record["stats"]["sha256"]

    # Same seed, same bytes; another seed, another draw.
    assert ladder(args) == 0
    assert sha(ref / "prompts.npz") == record["prompts"]["sha256"]
    assert ladder([*args[:-4], "--seed", "8", "--cache-dir", cache]) == 0
    with np.load(ref / "prompts.npz") as z:
        assert list(z["keys"]) != keys or list(z["captions"]) != captions


def test_prompts_from_another_text_encoder_are_refused(tmp_path):
    import pytest

    from ladder_api.errors import UserError
    from ladder_prepare import reference

    spec = pixel_spec(tmp_path)
    meta = {"text_encoder": {"name": "builtin-digits", "hash": None}}
    reference.write_npz(
        str(tmp_path / "ref" / "prompts.npz"),
        {
            "captions": np.array(["a", "b"]),
            "context": np.zeros((2, 4, 32), np.float16),
            "uncond": np.zeros((4, 32), np.float32),
            "meta": np.array(json.dumps(meta)),
        },
    )
    run = expand(load_experiment(spec)).runs[0]
    assert prompts_mod.load(run).take(0, 2)[0].dtype == np.float32
    other = run.model_copy(
        update={
            "data": run.data.model_copy(
                update={"text_encoder": run.data.text_encoder.model_copy(update={"name": "clip-vit-l14"})}
            )
        }
    )
    with pytest.raises(
        UserError, match="embedded with builtin-digits None but data.textEncoder is clip-vit-l14"
    ):
        prompts_mod.load(other)
