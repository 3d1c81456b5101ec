"""What a preparation must produce, read from the experiment spec: the ladder's latent and context
shapes and the data's encoders. One place, so every command checks the same fields."""

from __future__ import annotations

from dataclasses import dataclass

from ladder_api.spec import AutoencoderSpec, TextEncoderSpec


@dataclass(frozen=True)
class Target:
    latent_size: int
    latent_channels: int
    context_dim: int
    context_tokens: int
    autoencoder: AutoencoderSpec
    text_encoder: TextEncoderSpec
    train_uri: str
    reference_uri: str
    stats_uri: str | None

    @classmethod
    def from_run_config(cls, run) -> Target:
        """run: a RunConfig (ladder_api.plan), what a pod of the preparation JobSet is given; its
        model holds the ladder's latent and context shapes and its data is spec.data."""
        model, data = run.model, run.data
        return cls(
            latent_size=model.latent_size,
            latent_channels=model.latent_channels,
            context_dim=model.context_dim,
            context_tokens=model.context_tokens,
            autoencoder=data.autoencoder,
            text_encoder=data.text_encoder,
            train_uri=data.train_uri,
            reference_uri=data.reference_set.uri,
            stats_uri=data.reference_set.stats_uri,
        )

    @classmethod
    def from_spec(cls, spec) -> Target:
        """spec: a ScalingExperiment's .spec (ladder_api.spec)."""
        lad, data = spec.ladder, spec.data
        return cls(
            latent_size=lad.latent_size,
            latent_channels=lad.latent_channels,
            context_dim=lad.context_dim,
            context_tokens=lad.context_tokens,
            autoencoder=data.autoencoder,
            text_encoder=data.text_encoder,
            train_uri=data.train_uri,
            reference_uri=data.reference_set.uri,
            stats_uri=data.reference_set.stats_uri,
        )
