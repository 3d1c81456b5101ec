"""Load and save the autoencoder and the U-Net in diffusers' folder layout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ladder_api.errors import UserError
from ladder_trainer.weights import configs, convert, files
from ladder_trainer.weights.names import modernize


def _read_params(weights, abstract, levels: int, what: str, legacy_names: bool = False):
    """Check the file against the Flax tree's slots (every problem in one UserError), then convert."""
    expected = convert.slots(abstract, levels)
    with files.open_tensors(weights) as handle:
        raw = files.shapes(handle)
        names = {modernize(k) if legacy_names else k: k for k in raw}
        lines = convert.problems({k: raw[names[k]] for k in names}, expected)
        if lines:
            raise UserError(
                f"{weights}: does not hold the {what} its config.json describes:\n  " + "\n  ".join(lines)
                + f"\nUse the {what}'s own folder (its config.json and {files.WEIGHTS}, as diffusers "
                "writes them)."
            )
        params = convert.to_params(lambda k: handle.get_tensor(names[k]), expected, np.float32)
    return jax.tree_util.tree_map(jnp.asarray, params)


def load_autoencoder(uri: str, field: str = "autoencoder weights"):
    """(AutoencoderConfig, params) from a diffusers AutoencoderKL folder (e.g. sd-vae-ft-mse), a
    Stable Diffusion folder with a ``vae/`` subfolder, or the .safetensors file itself."""
    from ladder_trainer.models import autoencoder

    config_path, weights = files.locate(uri, "vae")
    config = configs.autoencoder_from_diffusers(files.read_config(config_path, field), str(config_path))
    abstract = autoencoder.abstract_params(config)
    levels = len(config.block_out_channels)
    return config, _read_params(weights, abstract, levels, "AutoencoderKL", legacy_names=True)


def save_autoencoder(uri: str, config, params) -> None:
    """The folder diffusers' ``AutoencoderKL.from_pretrained`` and ``load_autoencoder`` read."""
    state = convert.to_state_dict(params, len(config.block_out_channels))
    files.write_model(uri, configs.autoencoder_to_diffusers(config), state)


def load_unet(uri: str, field: str = "U-Net weights"):
    """(UNetShape, params) from a diffusers UNet2DConditionModel folder (e.g. SD v1.5's ``unet/``);
    ``ladder_trainer.models.build_unet(shape)`` is the module the params belong to."""
    from ladder_trainer.models import abstract_params

    config_path, weights = files.locate(uri, "unet")
    shape = configs.unet_from_diffusers(files.read_config(config_path, field), str(config_path))
    levels = len(shape.channel_mult)
    return shape, _read_params(weights, abstract_params(shape), levels, "UNet2DConditionModel")


def save_unet(uri: str, shape, params) -> None:
    """shape: the U-Net's ModelConfig or UNetShape."""
    state = convert.to_state_dict(params, len(shape.channel_mult))
    files.write_model(uri, configs.unet_to_diffusers(shape), state)
