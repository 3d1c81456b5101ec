"""Open run.data as a deterministic, resumable stream of global batches (grain).

The order is grain's ``MapDataset.range(n).seed(seed).shuffle().repeat()``: a random-access
permutation of the example indices, reshuffled each epoch, that depends only on the seed; the
examples of a batch are then read from the source in one batched call (one ranged read each,
concurrent). Global batch
``i`` is examples ``[i * B, (i + 1) * B)`` of it, and each process reads only its own contiguous
slice of that batch. The reader's position is therefore the next step number: the checkpoint stores
it, resumption continues mid-epoch exactly, and a restart on another number of hosts still sees
the same global batches.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import grain
import numpy as np

from ladder_api import failures
from ladder_api.errors import UserError
from ladder_trainer.data import digits
from ladder_trainer.data.builtin_text import NAME as BUILTIN_TEXT_ENCODER
from ladder_trainer.data.format import CONVERT_COMMAND, OldFormatError, read_manifest
from ladder_trainer.data.records import ArraySource, RecordSource


@dataclass
class OpenedData:
    source: object  # random access: len(), [i] -> {"latents", "context"}
    null_context: np.ndarray  # [T, D]
    autoencoder: str  # "identity" (pixel space) or "sd-vae"
    text_encoder: str
    uri: str
    identity: dict = field(default_factory=dict)  # encoders' names and weight hashes


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise UserError(message)


def _open_builtin(data_spec, model_config) -> OpenedData:
    uri = data_spec.train_uri
    want_latent = (model_config.latent_size, model_config.latent_size, model_config.latent_channels)
    if uri not in digits.URIS:
        known = ", ".join(digits.URIS)
        raise UserError(f"data.trainUri: unknown builtin dataset {uri!r}; known: {known}")
    _check(
        want_latent == (digits.LATENT_SIZE, digits.LATENT_SIZE, digits.LATENT_CHANNELS),
        f"data.trainUri {uri} holds 8x8x1 images: set ladder.latentSize 8 and ladder.latentChannels 1 "
        f"(got {want_latent[0]} and {want_latent[2]})",
    )
    _check(data_spec.autoencoder.kind == "identity",
           f"data.trainUri {uri} is in pixel space: set data.autoencoder.kind: identity")
    _check(
        data_spec.text_encoder.name == BUILTIN_TEXT_ENCODER,
        f"data.trainUri {uri} uses the builtin text encoder: "
        f"set data.textEncoder.name: {BUILTIN_TEXT_ENCODER}",
    )
    split = digits.from_uri(uri)
    ctx = split.context(model_config.context_dim, model_config.context_tokens)
    return OpenedData(
        ArraySource(split.images, ctx),
        digits.null_context(model_config.context_dim, model_config.context_tokens),
        "identity", BUILTIN_TEXT_ENCODER, uri,
        {"autoencoder": "identity", "text_encoder": BUILTIN_TEXT_ENCODER},
    )


def open_data(data_spec, model_config) -> OpenedData:
    """Open and validate run.data for run.model; every mismatch is a UserError before compute."""
    uri = data_spec.train_uri
    kind = data_spec.autoencoder.kind
    if uri.startswith("builtin:"):
        return _open_builtin(data_spec, model_config)
    try:
        manifest = read_manifest(uri)
    except FileNotFoundError:
        raise UserError(f"data.trainUri {uri}: no manifest.json there (is the path right? a "
                        "preparation still running writes it last)") from None
    except OldFormatError as err:
        raise UserError(
            f"data.trainUri {uri}: format {err} (npz shards read whole) is no longer read: convert it "
            f"with `{CONVERT_COMMAND} {uri} NEW_URI` (or prepare it again with `ladder prepare "
            "text-image`) and point data.trainUri at NEW_URI") from None
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"data.trainUri {uri}: invalid manifest.json ({err})") from None
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - permission, network, bucket missing...
        if failures.classify(err).kind == "infrastructure fault":
            raise  # a transient outage: restart and read again, rather than fail the experiment
        raise UserError(f"data.trainUri {uri}: cannot read ({err.__class__.__name__}: {err})") from None
    check_manifest(manifest, data_spec, model_config, uri)
    source = RecordSource(uri, manifest)
    return OpenedData(source, source.null_context(), kind, manifest.text_encoder.get("name"), uri,
                      identity(manifest))


def identity(manifest) -> dict:
    """What the data was made with, for checkpoints' metadata."""
    ae, te = manifest.autoencoder, manifest.text_encoder
    return {"autoencoder": ae.get("kind"), "autoencoder_hash": ae.get("hash"),
            "text_encoder": te.get("name"), "text_encoder_hash": te.get("hash")}


def check_manifest(manifest, data_spec, model_config, uri: str) -> None:
    """Shapes against run.model; encoders (name and weight hash) against run.data."""
    want_latent = (model_config.latent_size, model_config.latent_size, model_config.latent_channels)
    want_context = (model_config.context_tokens, model_config.context_dim)
    _check(tuple(manifest.latent_shape) == want_latent,
           f"data.trainUri {uri}: latents are {list(manifest.latent_shape)} but the ladder expects "
           f"{list(want_latent)} (ladder.latentSize, ladder.latentChannels)")
    _check(tuple(manifest.context_shape) == want_context,
           f"data.trainUri {uri}: text embeddings are {list(manifest.context_shape)} but the ladder "
           f"expects {list(want_context)} (ladder.contextTokens, ladder.contextDim)")
    ae, te = data_spec.autoencoder, data_spec.text_encoder
    made_ae, made_te = manifest.autoencoder, manifest.text_encoder
    _check(made_ae.get("kind") == ae.kind,
           f"data.trainUri {uri}: latents come from autoencoder {made_ae.get('kind')!r} but "
           f"data.autoencoder.kind is {ae.kind!r}")
    _check(ae.hash is None or made_ae.get("hash") == ae.hash,
           f"data.trainUri {uri}: latents were encoded with autoencoder weights {made_ae.get('hash')} but "
           f"data.autoencoder.hash is {ae.hash}: prepare the data with those weights, or correct the hash")
    _check(made_te.get("name") == te.name,
           f"data.trainUri {uri}: embeddings come from {made_te.get('name')!r} but data.textEncoder.name "
           f"is {te.name!r}")
    _check(te.hash is None or made_te.get("hash") == te.hash,
           f"data.trainUri {uri}: embeddings were made with text-encoder weights {made_te.get('hash')} "
           f"but data.textEncoder.hash is {te.hash}: prepare the data with those weights, or correct "
           "the hash")


class BatchStream:
    """Global batch `step` of a seeded, reshuffled-per-epoch stream; this process's slice of it.

    ``batch(step)`` also starts reading the next ``prefetch`` batches in a background thread, so
    while the accelerator runs step s the host is already fetching s + 1 ... s + prefetch; with
    steps asked in order, the host waits only when reading is slower than training.
    """

    def __init__(self, source, global_batch: int, seed: int, process_index: int = 0, process_count: int = 1,
                 prefetch: int = 2):
        if global_batch % process_count:
            raise UserError(
                f"training.globalBatch {global_batch} must be divisible by the {process_count} hosts"
            )
        self.source = source
        self.order = grain.MapDataset.range(len(source)).seed(seed).shuffle().repeat()
        self.global_batch = global_batch
        self.local_batch = global_batch // process_count
        self.offset = process_index * self.local_batch
        self.prefetch = prefetch
        self._pending: dict[int, Future] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ladder-data") if prefetch else None

    def indices(self, step: int) -> np.ndarray:
        """The examples of this process's slice of global batch `step`, in order."""
        start = step * self.global_batch + self.offset
        return np.array([self.order[start + j] for j in range(self.local_batch)], np.int64)

    def read(self, step: int) -> dict[str, np.ndarray]:
        """In the stored dtype: widening float16 on the host would cost more than reading (NumPy
        converts float16 at ~20 ns a value); the train step widens on the device."""
        return self.source.read(self.indices(step))

    def batch(self, step: int) -> dict[str, np.ndarray]:
        if self._pool is None:
            return self.read(step)
        for s in list(self._pending):
            if not step <= s <= step + self.prefetch:
                self._pending.pop(s).cancel()  # a jump (resumption): drop what is not wanted
        for s in range(step, step + self.prefetch + 1):
            if s not in self._pending:
                self._pending[s] = self._pool.submit(self.read, s)
        return self._pending.pop(step).result()

    def close(self) -> None:
        if self._pool is not None:
            for f in self._pending.values():
                f.cancel()
            self._pending.clear()
            self._pool.shutdown(wait=True)
