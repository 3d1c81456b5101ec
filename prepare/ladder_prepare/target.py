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
    def of(cls, shape, data) -> Target:
        """shape: what holds the ladder's latent and context shapes (the spec's LadderSpec or a
        run's ModelConfig: the same fields); data: spec.data."""
        return cls(
            latent_size=shape.latent_size,
            latent_channels=shape.latent_channels,
            context_dim=shape.context_dim,
            context_tokens=shape.context_tokens,
            autoencoder=data.autoencoder,
            text_encoder=data.text_encoder,
            train_uri=data.train_uri,
            reference_uri=data.reference_set.uri,
            stats_uri=data.reference_set.stats_uri,
        )

    @classmethod
    def from_run_config(cls, run) -> Target:
        """run: a RunConfig (ladder_api.plan), what a pod of the preparation JobSet is given."""
        return cls.of(run.model, run.data)

    @classmethod
    def from_spec(cls, spec) -> Target:
        """spec: a ScalingExperiment's .spec (ladder_api.spec)."""
        return cls.of(spec.ladder, spec.data)
