"""The spec's ``sd-vae`` autoencoder as both ends of the latent path use it: ``ladder prepare``
encodes images into training latents, the evaluator decodes sampled latents into images.

One object for both, so both check the same things the same way before any image is touched:
the weights (data.autoencoder.weightsUri, a diffusers AutoencoderKL folder) against
data.autoencoder.hash when set, the autoencoder's latent channels against ladder.latentChannels,
its scaling factor against data.autoencoder.scalingFactor. It runs jitted on every local
accelerator: a batch is sharded over ladder_trainer.data_mesh's ``data`` mesh (padded to a fixed
size that the device count divides, so every call has one shape and compiles once), the
parameters replicated.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ladder_api.errors import UserError
from ladder_trainer import data_mesh

FIELD = "data.autoencoder.weightsUri"


def load_checked(spec, latent_channels: int):
    """(AutoencoderConfig, params, weights hash) of data.autoencoder (an AutoencoderSpec), every
    mismatch with the spec one UserError naming the field."""
    from ladder_trainer.weights import files, load_autoencoder
    from ladder_trainer.weights.hashing import weights_hash

    if not spec.weights_uri:
        raise UserError(f"{FIELD}: sd-vae needs the autoencoder's weights (a diffusers AutoencoderKL folder)")
    config, params = load_autoencoder(spec.weights_uri, FIELD)
    if config.latent_channels != latent_channels:
        raise UserError(
            f"{FIELD} {spec.weights_uri}: the autoencoder has {config.latent_channels} latent "
            f"channels but ladder.latentChannels is {latent_channels}"
        )
    if abs(config.scaling_factor - spec.scaling_factor) > 1e-9 * max(1.0, spec.scaling_factor):
        raise UserError(
            f"data.autoencoder.scalingFactor is {spec.scaling_factor} but the autoencoder at "
            f"{spec.weights_uri} was made for {config.scaling_factor}: set "
            f"data.autoencoder.scalingFactor: {config.scaling_factor}"
        )
    digest = weights_hash([files.locate(spec.weights_uri, "vae")[1]])
    if spec.hash is not None and spec.hash != digest:
        raise UserError(
            f"data.autoencoder.hash is {spec.hash} but the weights at {spec.weights_uri} hash "
            f"to {digest}: point weightsUri at the intended weights, or correct the hash"
        )
    return config, params, digest


class SdVae:
    """data.autoencoder on a data mesh of the local devices: encode (prepare) and decode (evaluate)."""

    def __init__(self, spec, latent_channels: int, compute_dtype: str = "float32"):
        from ladder_trainer.models.autoencoder import codec

        self.config, params, self.hash = load_checked(spec, latent_channels)
        self.weights_uri = spec.weights_uri
        self.mesh = data_mesh.data_mesh()
        self.params = jax.device_put(params, data_mesh.replicated(self.mesh))
        self.codec = codec(self.config, compute_dtype)

    @property
    def factor(self) -> int:
        return self.config.downsample_factor

    def _sharded(self, x, pad_to: int):
        """x padded with zeros to max(len, pad_to) rounded up to the mesh size, on the mesh."""
        total = data_mesh.padded_rows(len(x), self.mesh, pad_to)
        return jax.device_put(data_mesh.pad(x, total), data_mesh.rows(self.mesh))

    def encode(self, images, pad_to: int = 0) -> np.ndarray:
        """Images in [-1, 1] [n, S, S, 3] -> diffusion latents [n, S/f, S/f, C] (the mean, scaled)."""
        return np.asarray(self.codec.encode(self.params, self._sharded(images, pad_to)))[: len(images)]

    def decode(self, latents, pad_to: int = 0) -> np.ndarray:
        """Diffusion latents [n, L, L, C] -> images [n, L*f, L*f, 3] clipped to [-1, 1]."""
        out = self.codec.decode(self.params, self._sharded(latents, pad_to))
        return np.clip(np.asarray(out, np.float32)[: len(latents)], -1.0, 1.0)

    def identity(self) -> dict:
        """What a training set records of the autoencoder it was encoded with."""
        return {
            "kind": "sd-vae",
            "hash": self.hash,
            "scaling_factor": self.config.scaling_factor,
            "config": dataclasses.asdict(self.config),
            "weights_uri": self.weights_uri,
        }


def image_geometry(spec, latent_size: int, latent_channels: int) -> tuple[int, int]:
    """(pixels per side, channels) of the images behind latents of this size, from the
    autoencoder's config alone (no weights loaded)."""
    if spec.kind == "identity":
        return latent_size, latent_channels
    from ladder_trainer.weights import configs, files

    if not spec.weights_uri:
        raise UserError(f"{FIELD}: sd-vae needs the autoencoder's folder (its config.json fixes the "
                        "image size)")
    config_path, _ = files.locate(spec.weights_uri, "vae")
    config = configs.autoencoder_from_diffusers(files.read_config(config_path, FIELD), config_path)
    return latent_size * config.downsample_factor, config.in_channels
