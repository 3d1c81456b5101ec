"""`autoencoder: sd-vae` in the evaluator: samples are decoded by data.autoencoder's AutoencoderKL
(a tiny random one saved in diffusers' layout, loaded as SD's VAE is) before they are scored and
saved; the report's sample grids show the decoded images. `identity` stays as it was. The decode
sharded over several devices equals one device's: tests/prepare/test_sharded_encode.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ladder_api import artifacts
from ladder_api.errors import UserError
from ladder_api.loading import parse_experiment
from ladder_api.plan import expand
from ladder_evaluator.decode import decoder
from ladder_evaluator.main import main
from ladder_trainer.models import autoencoder as ae
from ladder_trainer.weights import save_autoencoder
from ladder_trainer.weights.hashing import weights_hash

from .conftest import evaluable

# f = 2: 4x4x4 latents decode to 8x8 RGB images.
AE = ae.AutoencoderConfig(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                          latent_channels=4, scaling_factor=0.5)


@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("weights") / "vae")
    save_autoencoder(path, AE, ae.init_params(AE, seed=3))
    return path


def _hash(vae_dir: str) -> str:
    return weights_hash([f"{vae_dir}/diffusion_pytorch_model.safetensors"])


def _run(out: Path, vae: str, **autoencoder):
    doc = {
        "apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": "vaeev"},
        "spec": {
            "ladder": {"widths": [16], "contextDim": 8, "contextTokens": 4, "channelMult": [1, 2],
                       "numResBlocks": 1, "attentionLevels": [1], "numHeads": 2, "normGroups": 8,
                       "latentChannels": 4, "latentSize": 4},
            "data": {"trainUri": str(out / "train"), "textEncoder": "builtin-digits",
                     "autoencoder": {"kind": "sd-vae", "weightsUri": vae, "scalingFactor": 0.5,
                                     **autoencoder},
                     "referenceSet": {"name": "digits-test", "uri": "builtin:digits-test"}},
            "training": {"steps": 10, "globalBatch": 8, "computeDtype": "float32",
                         "lrSchedule": {"warmupSteps": 0}},
            "evaluation": {"samplers": ["ddim"], "steps": [2], "guidanceScales": [1.0], "numSamples": 10,
                           "batchSize": 6, "metrics": ["fid", "adherence"],
                           "fidFeatures": "digits-classifier"},
            "storage": {"outputUri": str(out)},
        },
    }
    return expand(parse_experiment(doc)).runs[0]


def test_sd_vae_decoder_is_the_autoencoders_decode_clipped_and_padding_changes_nothing(vae_dir, tmp_path):
    run = _run(tmp_path, vae_dir)
    decode = decoder(run)
    latents = np.random.default_rng(0).normal(size=(5, 4, 4, 4)).astype(np.float32) * 2
    images = decode(latents)  # 5 padded to the batch size 6
    params = decode.vae.params
    want = np.clip(np.asarray(ae.codec(AE).decode(params, latents)), -1, 1)
    assert images.shape == (5, 8, 8, 3)
    np.testing.assert_allclose(images, want, rtol=1e-5, atol=1e-5)
    assert np.abs(images).max() <= 1.0
    assert decode.weights_hash == _hash(vae_dir)


def test_identity_is_unchanged(tmp_path):
    run = _run(tmp_path, "unused")
    run = run.model_copy(update={"data": run.data.model_copy(update={
        "autoencoder": run.data.autoencoder.model_copy(update={"kind": "identity"})})})
    x = np.array([[-3.0, -0.5], [0.25, 7.0]], np.float32)
    decode = decoder(run)
    np.testing.assert_array_equal(decode(x), np.clip(x, -1, 1))
    assert decode.weights_hash is None


@pytest.mark.parametrize(("changes", "words"), [
    ({"hash": "sha256:" + "0" * 64}, ["data.autoencoder.hash", "sha256:" + "0" * 64]),
    ({"scalingFactor": 0.18215}, ["data.autoencoder.scalingFactor", "0.5"]),
])
def test_an_autoencoder_other_than_the_spec_is_refused(vae_dir, tmp_path, changes, words):
    with pytest.raises(UserError) as err:
        decoder(_run(tmp_path, vae_dir, **changes))
    assert all(w in str(err.value) for w in words)


def test_latent_channels_other_than_the_ladders_are_refused(vae_dir, tmp_path):
    run = _run(tmp_path, vae_dir)
    run = run.model_copy(update={"model": run.model.model_copy(update={"latent_channels": 3})})
    with pytest.raises(UserError, match="4 latent channels but ladder.latentChannels is 3"):
        decoder(run)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, vae_dir, classifier_cache, digits_extractor):
    """A latent U-Net checkpoint at step 10 (conftest.evaluable)."""
    return evaluable(_run(tmp_path_factory.mktemp("vaerun"), vae_dir), classifier_cache)


def test_latent_samples_are_decoded_scored_saved_and_shown(checkpoint, vae_dir, tmp_path):
    from ladder_report.load import _sample_set
    from ladder_report.plots import sample_grid

    run = checkpoint
    config = tmp_path / "run.json"
    config.write_text(run.model_dump_json(by_alias=True))
    results = tmp_path / "results"
    assert main(["--config", str(config), "--checkpoint", run.paths.checkpoints, "--results",
                 str(results), "--no-progress"]) == 0
    found = {r.metric: r for r in artifacts.read_results(str(results))}
    assert sorted(found) == ["adherence", "fid-digits-classifier"]
    assert found["fid-digits-classifier"].value > 0
    assert all(r.settings["autoencoder"] == "sd-vae"
               and r.settings["autoencoderWeightsSha256"] == _hash(vae_dir) for r in found.values())

    [saved] = sorted(Path(run.paths.samples).rglob("*.npz"))
    with np.load(saved) as z:
        images = z["images"]
    assert images.shape == (10, 8, 8, 3)  # decoded: the 4x4x4 latents are 8x8 RGB images
    assert np.abs(images).max() <= 1.0 and images.std() > 0
    shown = _sample_set(str(saved), run.width)
    assert shown.images.shape == (10, 8, 8, 3)
    assert sample_grid([("c16", shown.images, shown.labels)]).startswith(b"\x89PNG")
