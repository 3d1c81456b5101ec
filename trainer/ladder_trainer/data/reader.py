"""Open run.data as a deterministic, resumable stream of global batches (grain).

The stream is grain's ``MapDataset.source(src).seed(seed).shuffle().repeat()``: a random-access
permutation of the examples, reshuffled each epoch, that depends only on the seed. Global batch
``i`` is examples ``[i * B, (i + 1) * B)`` of it, and each process reads only its own contiguous
slice of that batch. The reader's position is therefore the next step number: the checkpoint stores
it, resumption continues mid-epoch exactly, and a restart on another number of hosts still sees
the same global batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import grain
import numpy as np

from ladder_api import failures
from ladder_api.errors import UserError
from ladder_trainer.data import digits
from ladder_trainer.data.builtin_text import NAME as BUILTIN_TEXT_ENCODER
from ladder_trainer.data.format import ArraySource, ShardSource, read_manifest


@dataclass
class OpenedData:
    source: object  # random access: len(), [i] -> {"latents", "context"}
    null_context: np.ndarray  # [T, D]
    autoencoder: str  # "identity" (pixel space) or "sd-vae"
    text_encoder: str
    uri: str


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise UserError(message)


def open_data(data_spec, model_config) -> OpenedData:
    """Open and validate run.data for run.model; every mismatch is a UserError before compute."""
    uri = data_spec.train_uri
    want_latent = (model_config.latent_size, model_config.latent_size, model_config.latent_channels)
    want_context = (model_config.context_tokens, model_config.context_dim)
    kind = data_spec.autoencoder.kind
    if uri.startswith("builtin:"):
        if uri not in digits.URIS:
            known = ", ".join(digits.URIS)
            raise UserError(f"data.trainUri: unknown builtin dataset {uri!r}; known: {known}")
        _check(
            want_latent == (digits.LATENT_SIZE, digits.LATENT_SIZE, digits.LATENT_CHANNELS),
            f"data.trainUri {uri} holds 8x8x1 images: set ladder.latentSize 8 and ladder.latentChannels 1 "
            f"(got {want_latent[0]} and {want_latent[2]})",
        )
        _check(kind == "identity",
               f"data.trainUri {uri} is in pixel space: set data.autoencoder.kind: identity")
        _check(
            data_spec.text_encoder == BUILTIN_TEXT_ENCODER,
            f"data.trainUri {uri} uses the builtin text encoder: "
            f"set data.textEncoder: {BUILTIN_TEXT_ENCODER}",
        )
        split = digits.from_uri(uri)
        ctx = split.context(model_config.context_dim, model_config.context_tokens)
        return OpenedData(
            ArraySource(split.images, ctx),
            digits.null_context(model_config.context_dim, model_config.context_tokens),
            "identity", BUILTIN_TEXT_ENCODER, uri,
        )
    try:
        manifest = read_manifest(uri)
    except FileNotFoundError:
        raise UserError(f"data.trainUri {uri}: no manifest.json there (is the path right?)") from None
    except (ValueError, KeyError) as err:
        raise UserError(f"data.trainUri {uri}: invalid manifest.json ({err})") from None
    except Exception as err:  # noqa: BLE001 - permission, network, bucket missing...
        if failures.classify(err).kind == "infrastructure fault":
            raise  # a transient outage: restart and read again, rather than fail the experiment
        raise UserError(f"data.trainUri {uri}: cannot read ({err.__class__.__name__}: {err})") from None
    _check(tuple(manifest.latent_shape) == want_latent,
           f"data.trainUri {uri}: latents are {list(manifest.latent_shape)} but the ladder expects "
           f"{list(want_latent)} (ladder.latentSize, ladder.latentChannels)")
    _check(tuple(manifest.context_shape) == want_context,
           f"data.trainUri {uri}: text embeddings are {list(manifest.context_shape)} but the ladder "
           f"expects {list(want_context)} (ladder.contextTokens, ladder.contextDim)")
    _check(manifest.autoencoder.get("kind") == kind,
           f"data.trainUri {uri}: latents come from autoencoder {manifest.autoencoder.get('kind')!r} but "
           f"data.autoencoder.kind is {kind!r}")
    _check(manifest.text_encoder == data_spec.text_encoder,
           f"data.trainUri {uri}: embeddings come from {manifest.text_encoder!r} but data.textEncoder "
           f"is {data_spec.text_encoder!r}")
    source = ShardSource(uri, manifest)
    return OpenedData(source, source.null_context(), kind, manifest.text_encoder, uri)


class BatchStream:
    """Global batch `step` of a seeded, reshuffled-per-epoch stream; this process's slice of it."""

    def __init__(self, source, global_batch: int, seed: int, process_index: int = 0, process_count: int = 1):
        if global_batch % process_count:
            raise UserError(
                f"training.globalBatch {global_batch} must be divisible by the {process_count} hosts"
            )
        self.dataset = grain.MapDataset.source(source).seed(seed).shuffle().repeat()
        self.global_batch = global_batch
        self.local_batch = global_batch // process_count
        self.offset = process_index * self.local_batch

    def batch(self, step: int) -> dict[str, np.ndarray]:
        start = step * self.global_batch + self.offset
        examples = [self.dataset[start + j] for j in range(self.local_batch)]
        return {
            "latents": np.stack([e["latents"] for e in examples]).astype(np.float32),
            "context": np.stack([e["context"] for e in examples]).astype(np.float32),
        }
