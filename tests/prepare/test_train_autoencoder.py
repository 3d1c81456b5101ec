"""`ladder prepare train-autoencoder`: a small AutoencoderKL trained on real images (the digits),
saved in diffusers' layout, loaded back by the loader SD's VAE goes through, then used by
`ladder prepare text-image` with the scaling factor and hash it printed."""

from __future__ import annotations

import numpy as np

from ladder_cli.main import main as ladder
from ladder_prepare import sources
from ladder_prepare import train_autoencoder as ta
from ladder_trainer.data.format import read_manifest
from ladder_trainer.models import autoencoder as ae
from ladder_trainer.weights import load_autoencoder

from .conftest import spec_file, webdataset_shards


def test_trained_autoencoder_reconstructs_better_and_loads_as_sd_vae_does(tmp_path, capsys):
    shards = webdataset_shards(tmp_path / "shards", counts=(12, 12), bad=False)
    spec = spec_file(tmp_path / "exp.yaml", autoencoder={"kind": "sd-vae"})
    out = tmp_path / "my-vae"
    assert (
        ladder(
            [
                "prepare",
                "train-autoencoder",
                spec,
                "--webdataset",
                str(shards),
                "--output",
                str(out),
                "--widths",
                "8,16",
                "--norm-groups",
                "4",
                "--steps",
                "60",
                "--batch-size",
                "8",
                "--learning-rate",
                "3e-3",
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    scaling = float(said.split("scalingFactor: ")[1].split()[0])
    digest = said.split("hash: ")[1].split()[0]

    config, params = load_autoencoder(str(out))
    assert config.block_out_channels == (8, 16) and config.latent_channels == 4
    assert config.scaling_factor == scaling and 0.01 < scaling < 100
    images, _ = ta.collect_images(sources.WebDataset([str(shards)]), 16, 3)
    untrained = ta.reconstruction_error(config, ae.init_params(config, 0), images)
    trained = ta.reconstruction_error(config, params, images)
    assert trained < 0.7 * untrained
    # Scaled latents have about unit spread, as SD's 0.18215 gives its VAE's.
    latents = np.asarray(ae.codec(config).encode(params, images.astype(np.float32) / 127.5 - 1))
    assert 0.8 < latents.std() < 1.25

    # The trained autoencoder is a data.autoencoder like SD's: text-image encodes with it.
    vae = {"kind": "sd-vae", "weightsUri": str(out), "scalingFactor": scaling, "hash": digest}
    spec = spec_file(tmp_path / "exp.yaml", autoencoder=vae)
    assert (
        ladder(
            ["prepare", "text-image", spec, "--webdataset", str(shards), "--output", str(tmp_path / "train")]
        )
        == 0
    )
    m = read_manifest(str(tmp_path / "train"))
    assert m.num_examples == 24 and m.autoencoder["hash"] == digest


def test_losses_fall_with_a_fixed_seed_and_repeat_exactly():
    images, _ = ta.collect_images(sources.WebDataset([str(webdataset_shards_once())]), 16, 3)
    recipe = ta.Recipe(widths=(8, 16), norm_groups=4, steps=12, batch_size=8, learning_rate=3e-3, seed=1)
    config = recipe.config(4, 3)
    _, a = ta.train(images, config, recipe)
    _, b = ta.train(images, config, recipe)
    np.testing.assert_array_equal(a, b)
    assert a[-4:].mean() < a[:4].mean()


_SHARDS = {}


def webdataset_shards_once():
    import tempfile
    from pathlib import Path

    if "dir" not in _SHARDS:
        _SHARDS["tmp"] = tempfile.TemporaryDirectory(prefix="ladder-ae-")
        _SHARDS["dir"] = webdataset_shards(Path(_SHARDS["tmp"].name), counts=(10,), bad=False)
    return _SHARDS["dir"]
