"""Images -> the latents the U-Net trains on, with the autoencoder data.autoencoder names.

- ``sd-vae``: the Flax AutoencoderKL with weights from data.autoencoder.weightsUri, on a ``data``
  mesh of the local devices (ladder_trainer.models.sd_vae, which the evaluator decodes with).
  Images are latentSize x f pixels (f = 8 for SD's VAE).
- ``identity``: pixel space; the "latents" are the images in [-1, 1] at latentSize, with
  latentChannels channels (1: greyscale, 3: RGB).

Checked before any image is read (ladder_trainer.models.sd_vae): the autoencoder's latent channels
against ladder.latentChannels, its scaling factor against data.autoencoder.scalingFactor, its
weights' hash against data.autoencoder.hash when set.
"""

from __future__ import annotations

import numpy as np

from ladder_api.errors import UserError
from ladder_prepare.images import to_model_space


class ImageEncoder:
    kind: str
    image_size: int
    channels: int  # of the input images
    latent_shape: tuple[int, int, int]

    def encode(self, u8: np.ndarray, pad_to: int = 0) -> np.ndarray:
        """uint8 [n, S, S, channels] -> float32 latents [n, L, L, C] (scaled for diffusion).
        pad_to: run the batch padded to this size, so every call has one shape (one compile)."""
        raise NotImplementedError

    def identity(self) -> dict:
        raise NotImplementedError


class Identity(ImageEncoder):
    kind = "identity"

    def __init__(self, latent_size: int, latent_channels: int):
        if latent_channels not in (1, 3):
            raise UserError(
                f"ladder.latentChannels {latent_channels}: the identity autoencoder takes "
                "greyscale (1) or RGB (3) images"
            )
        self.image_size, self.channels = latent_size, latent_channels
        self.latent_shape = (latent_size, latent_size, latent_channels)

    def encode(self, u8, pad_to=0):
        return to_model_space(u8)

    def identity(self):
        return {"kind": self.kind, "hash": None}


class SdVae(ImageEncoder):
    """ladder_trainer.models.sd_vae's autoencoder (the evaluator decodes with the same one), fed
    uint8 images."""

    kind = "sd-vae"

    def __init__(self, spec, latent_size: int, latent_channels: int):
        from ladder_trainer.models.sd_vae import SdVae as MeshVae

        self.vae = MeshVae(spec, latent_channels)
        self.config, self.hash = self.vae.config, self.vae.hash
        self.mesh, self.params = self.vae.mesh, self.vae.params
        self.image_size, self.channels = latent_size * self.vae.factor, self.config.in_channels
        self.latent_shape = (latent_size, latent_size, latent_channels)

    def encode(self, u8, pad_to=0):
        return self.vae.encode(to_model_space(u8), pad_to)

    def identity(self):
        return self.vae.identity()


def load(target) -> ImageEncoder:
    spec = target.autoencoder
    if spec.kind == "identity":
        return Identity(target.latent_size, target.latent_channels)
    return SdVae(spec, target.latent_size, target.latent_channels)


def image_geometry(target) -> tuple[int, int]:
    """(pixels per side, channels) of the images the evaluator generates and training encodes,
    from the autoencoder's config alone (no weights loaded)."""
    from ladder_trainer.models.sd_vae import image_geometry as geometry

    return geometry(target.autoencoder, target.latent_size, target.latent_channels)
