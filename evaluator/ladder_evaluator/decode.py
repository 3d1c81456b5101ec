"""Sampled latents -> the images every metric scores and the report shows.

- ``identity`` (pixel-space runs such as the digits quickstart): the samples are the images,
  clipped to [-1, 1].
- ``sd-vae``: decoded by data.autoencoder's AutoencoderKL, the same module and checks
  ``ladder prepare`` encoded the training set with (ladder_trainer.models.sd_vae), on a data
  mesh of the local devices; every batch is padded to evaluation.batchSize (one compiled decoder).

Built before any sampling, so a missing or mismatched autoencoder is a UserError before compute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ladder_api.plan import RunConfig


@dataclass
class Decoder:
    kind: str
    vae: object | None = None  # ladder_trainer.models.sd_vae.SdVae
    pad_to: int = 0

    def __call__(self, latents) -> np.ndarray:
        """Latents [n, L, L, C] -> images [n, S, S, channels] in [-1, 1]."""
        if self.vae is None:
            return np.clip(np.asarray(latents, np.float32), -1.0, 1.0)
        return self.vae.decode(latents, pad_to=self.pad_to)

    @property
    def weights_hash(self) -> str | None:
        """sha256:<hex> of the autoencoder weights that decode the samples (None in pixel space),
        recorded in every result's settings by provenance."""
        return None if self.vae is None else self.vae.hash


def decoder(run: RunConfig) -> Decoder:
    ae = run.data.autoencoder
    if ae.kind == "identity":
        return Decoder(ae.kind)
    from ladder_trainer.models.sd_vae import SdVae

    return Decoder(ae.kind, SdVae(ae, run.model.latent_channels), run.evaluation.batch_size)
