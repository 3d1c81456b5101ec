"""Images -> the latents the U-Net trains on, with the autoencoder data.autoencoder names.

- ``sd-vae``: the Flax AutoencoderKL (ladder_trainer.models.autoencoder) with weights from
  data.autoencoder.weightsUri, run jitted on every local accelerator: the batch is sharded over a
  one-axis ``data`` mesh of ``jax.local_devices()`` (padded to a multiple of their number), the
  parameters replicated. Images are latentSize x f pixels (f = 8 for SD's VAE).
- ``identity``: pixel space; the "latents" are the images in [-1, 1] at latentSize, with
  latentChannels channels (1: greyscale, 3: RGB).

Checked before any image is read: the autoencoder's latent channels against ladder.latentChannels,
its scaling factor against data.autoencoder.scalingFactor, its weights' hash against
data.autoencoder.hash when set.
"""

from __future__ import annotations

import numpy as np

from ladder_api.errors import UserError
from ladder_prepare.hashing import weights_hash
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
    kind = "sd-vae"

    def __init__(self, spec, latent_size: int, latent_channels: int):
        import jax
        from jax.sharding import Mesh, NamedSharding
        from jax.sharding import PartitionSpec as P

        from ladder_trainer.models.autoencoder import codec
        from ladder_trainer.weights import files, load_autoencoder

        if not spec.weights_uri:
            raise UserError(
                "data.autoencoder.weightsUri: sd-vae needs the autoencoder's weights (a diffusers "
                "AutoencoderKL folder)"
            )
        config, params = load_autoencoder(spec.weights_uri, "data.autoencoder.weightsUri")
        if config.latent_channels != latent_channels:
            raise UserError(
                f"data.autoencoder.weightsUri {spec.weights_uri}: the autoencoder has "
                f"{config.latent_channels} latent channels but ladder.latentChannels is "
                f"{latent_channels}"
            )
        if abs(config.scaling_factor - spec.scaling_factor) > 1e-9 * max(1.0, spec.scaling_factor):
            raise UserError(
                f"data.autoencoder.scalingFactor is {spec.scaling_factor} but the autoencoder at "
                f"{spec.weights_uri} was made for {config.scaling_factor}: set "
                f"data.autoencoder.scalingFactor: {config.scaling_factor}"
            )
        self.hash = weights_hash([str(files.locate(spec.weights_uri, "vae")[1])])
        if spec.hash is not None and spec.hash != self.hash:
            raise UserError(
                f"data.autoencoder.hash is {spec.hash} but the weights at {spec.weights_uri} hash "
                f"to {self.hash}: point weightsUri at the intended weights, or correct the hash"
            )
        self.config, self.weights_uri = config, spec.weights_uri
        self.image_size, self.channels = latent_size * config.downsample_factor, config.in_channels
        self.latent_shape = (latent_size, latent_size, latent_channels)
        devices = jax.local_devices()
        self.mesh = Mesh(np.array(devices), ("data",))
        self.batch_sharding = NamedSharding(self.mesh, P("data"))
        self.params = jax.device_put(params, NamedSharding(self.mesh, P()))
        self.codec = codec(config)

    def encode(self, u8, pad_to=0):
        import jax

        n, d = len(u8), self.mesh.size
        x = to_model_space(u8)
        pad = max(n, pad_to) - n
        pad += (-(n + pad)) % d
        if pad:
            x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
        latents = self.codec.encode(self.params, jax.device_put(x, self.batch_sharding))
        return np.asarray(latents)[:n]

    def identity(self):
        import dataclasses

        return {
            "kind": self.kind,
            "hash": self.hash,
            "scaling_factor": self.config.scaling_factor,
            "config": dataclasses.asdict(self.config),
            "weights_uri": self.weights_uri,
        }


def load(target) -> ImageEncoder:
    spec = target.autoencoder
    if spec.kind == "identity":
        return Identity(target.latent_size, target.latent_channels)
    return SdVae(spec, target.latent_size, target.latent_channels)


def image_geometry(target) -> tuple[int, int]:
    """(pixels per side, channels) of the images the evaluator generates and training encodes,
    from the autoencoder's config alone (no weights loaded)."""
    spec = target.autoencoder
    if spec.kind == "identity":
        return target.latent_size, target.latent_channels
    from ladder_trainer.weights import configs, files

    if not spec.weights_uri:
        raise UserError("data.autoencoder.weightsUri: sd-vae needs the autoencoder's folder (its config.json "
                        "fixes the image size)")
    config_path, _ = files.locate(spec.weights_uri, "vae")
    config = configs.autoencoder_from_diffusers(files.read_config(config_path, "data.autoencoder.weightsUri"),
                                                str(config_path))
    return target.latent_size * config.downsample_factor, config.in_channels
