"""Evaluation prompts from the reference set: captions, their text embeddings, the unconditional
embedding and (for digits) the prompted label.

- builtin:digits-test (and builtin:digits): the digits held-out split with its captions, embedded
  by the builtin text encoder exactly as the trainer embeds them.
- anything else: an .npz at data.referenceSet.uri (local path or gs://) with arrays
  `captions` [N] (str), `context` [N, contextTokens, contextDim] (float) and `uncond`
  [contextTokens, contextDim]; embeddings are precomputed with the frozen text encoder, as the
  training shards are, so the evaluator never runs a text encoder.
Sample i uses prompt i (load refuses fewer prompts than evaluation.numSamples: wrapping around
would score repeated prompts), so every measurement sees the same prompts in the same order. The
unconditional embedding must be the training data's null context: guidance extrapolates away from
the embedding the model learned as "no prompt", and any other one is a different model input.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field, replace

import numpy as np

from ladder_api.errors import UserError
from ladder_api.plan import RunConfig
from ladder_api.storage import read_bytes


@dataclass(frozen=True)
class Prompts:
    captions: tuple[str, ...]
    context: np.ndarray  # [N, T, D] float32
    uncond: np.ndarray  # [T, D] float32
    labels: np.ndarray | None  # [N] prompted digit, digits only
    images: np.ndarray | None  # reference images in model space, when the set ships them
    sha256: str = field(default="")  # of the prompts file (builtin: of its arrays), recorded
    text_encoder_sha256: str | None = None  # the weights that embedded them, recorded (see load)

    def __len__(self) -> int:
        return len(self.captions)

    def take(self, start: int, n: int) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None]:
        idx = np.arange(start, start + n) % len(self)
        labels = None if self.labels is None else self.labels[idx]
        return self.context[idx], tuple(self.captions[i] for i in idx), labels


def is_builtin_digits(uri: str) -> bool:
    return uri in ("builtin:digits", "builtin:digits-test")


def load(run: RunConfig) -> Prompts:
    """The reference prompts, checked against evaluation.numSamples and the training data's
    unconditional embedding before any compute."""
    prompts = _read(run)
    n = run.evaluation.num_samples
    if len(prompts) < n:
        raise UserError(
            f"data.referenceSet.uri {run.data.reference_set.uri} holds {len(prompts)} prompts but "
            f"evaluation.numSamples is {n}: each sample needs its own prompt (make the set with at "
            f"least {n}, e.g. `ladder prepare reference --num {n}`, or lower numSamples)"
        )
    manifest = training_manifest(run)
    check_null_context(run, prompts.uncond, manifest)
    trained = None if manifest is None else manifest.text_encoder.get("hash")
    return replace(prompts, text_encoder_sha256=text_encoder_hash(run, prompts.text_encoder_sha256, trained))


def text_encoder_hash(run: RunConfig, made: str | None, trained: str | None) -> str | None:
    """The hash of the text encoder weights behind the prompts' embeddings, recorded with every
    result: as the prompts file records it, else as the training data does (the null-context
    check has tied the two files to one encoder), else data.textEncoder.hash. Both files
    recording different weights is refused: the model would be prompted in another embedding."""
    if made and trained and made != trained:
        raise UserError(
            f"data.referenceSet.uri {run.data.reference_set.uri} was embedded with text-encoder weights "
            f"{made} but data.trainUri {run.data.train_uri} with {trained}: prepare the prompts again "
            "with the training set's encoder (ladder prepare reference)"
        )
    return made or trained or run.data.text_encoder.hash


def check_null_context(run: RunConfig, uncond: np.ndarray, manifest=None) -> None:
    """The prompts' unconditional embedding must equal the training data's null context."""
    train = training_null_context(run, manifest)
    if train is None:
        return
    if train.shape != uncond.shape or not np.allclose(train, uncond, rtol=1e-4, atol=1e-5):
        raise UserError(
            f"the unconditional embedding of data.referenceSet.uri {run.data.reference_set.uri} differs "
            f"from the null context of data.trainUri {run.data.train_uri}: the prompts were embedded "
            "with another text encoder (or its empty prompt differs); make them with the same "
            "data.textEncoder as the training shards"
        )


def training_manifest(run: RunConfig):
    """The training data's manifest (ladder_trainer.data.format.Manifest), or None for builtin
    data or when it cannot be read here (the trainer has refused unreadable data already)."""
    uri = run.data.train_uri
    if uri.startswith("builtin:"):
        return None
    from ladder_trainer.data.format import read_manifest

    try:
        return read_manifest(uri)
    except (OSError, KeyError, ValueError, TypeError):
        return None


def training_null_context(run: RunConfig, manifest=None) -> np.ndarray | None:
    """The null context the model trained with (None when the training data cannot be read here:
    the evaluator then has nothing to compare with). manifest: training_manifest(run), if read."""
    uri = run.data.train_uri
    dim, tokens = run.model.context_dim, run.model.context_tokens
    if uri.startswith("builtin:"):
        from ladder_trainer.data import digits

        return digits.null_context(dim, tokens)
    from ladder_trainer.data.format import read_null_context

    manifest = manifest or training_manifest(run)
    if manifest is None:
        return None
    try:
        return np.asarray(read_null_context(uri, manifest), np.float32)
    except (OSError, KeyError, ValueError):
        return None


def _digest(*parts: bytes) -> str:
    """sha256:<hex>, the form `ladder prepare` prints and specs pin."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return "sha256:" + h.hexdigest()


def _read(run: RunConfig) -> Prompts:
    ref = run.data.reference_set
    dim, tokens = run.model.context_dim, run.model.context_tokens
    if is_builtin_digits(ref.uri):
        from ladder_trainer.data import digits

        split = digits.from_uri(ref.uri)
        context, uncond = split.context(dim, tokens), digits.null_context(dim, tokens)
        sha = _digest("\n".join(split.captions).encode(), np.ascontiguousarray(context).tobytes(),
                      np.ascontiguousarray(uncond).tobytes())
        return Prompts(captions=split.captions, context=context, uncond=uncond, labels=split.labels,
                       images=split.images, sha256=sha)
    if ref.uri.startswith("builtin:"):
        raise UserError(f"data.referenceSet.uri {ref.uri!r}: known builtin sets are builtin:digits-test")
    try:
        raw = read_bytes(ref.uri)
    except FileNotFoundError:
        raise UserError(
            f"reference prompts not found at {ref.uri} (data.referenceSet.uri): it must be an .npz "
            "with captions, context and uncond arrays (`ladder prepare reference` writes one)"
        ) from None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            captions = tuple(str(c) for c in z["captions"])
            context = np.asarray(z["context"], np.float32)
            uncond = np.asarray(z["uncond"], np.float32)
            labels = np.asarray(z["labels"]) if "labels" in z.files else None
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
    except (KeyError, ValueError, OSError) as err:
        raise UserError(
            f"reference prompts at {ref.uri} must be an .npz with arrays captions, context, uncond ({err})"
        ) from None
    if context.shape[1:] != (tokens, dim) or uncond.shape != (tokens, dim) or len(context) != len(captions):
        raise UserError(
            f"reference prompts at {ref.uri}: context {context.shape} / uncond {uncond.shape} do not "
            f"match {len(captions)} captions x ladder.contextTokens {tokens} x ladder.contextDim {dim}"
        )
    made = meta.get("text_encoder") or {}
    _check_encoder(made, run.data.text_encoder, ref.uri)
    return Prompts(captions, context, uncond, labels, None, _digest(raw), made.get("hash"))


def _check_encoder(made: dict | None, spec, uri: str) -> None:
    """A prompts file from `ladder prepare reference` records its encoder: it must be the spec's."""
    if not made:
        return
    if made.get("name") != spec.name or (spec.hash is not None and made.get("hash") != spec.hash):
        raise UserError(
            f"reference prompts at {uri} were embedded with {made.get('name')} {made.get('hash')} but "
            f"data.textEncoder is {spec.name} {spec.hash or ''}: prepare them again with this experiment's "
            "encoder (ladder prepare reference)"
        )
