"""Evaluation prompts from the reference set: captions, their text embeddings, the unconditional
embedding and (for digits) the prompted label.

- builtin:digits-test (and builtin:digits): the digits held-out split with its captions, embedded
  by the builtin text encoder exactly as the trainer embeds them.
- anything else: an .npz at data.referenceSet.uri (local path or gs://), as `ladder prepare
  reference` writes it: arrays `captions` [N] (str), `context` [N, contextTokens, contextDim]
  (float16 or float32) and `uncond` [contextTokens, contextDim], optionally `keys` and `meta`
  (JSON: the text encoder's name and weight hash, checked against data.textEncoder); embeddings
  are precomputed with the frozen text encoder, as the training data is, so the evaluator never
  runs a text encoder. The file's sha256 goes into every result's settings (promptsHash).
Sample i uses prompt i mod N, so every measurement sees the same prompts in the same order.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

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
    sha256: str | None = None  # of the prompts file as read (recorded in every result's settings)

    def __len__(self) -> int:
        return len(self.captions)

    def take(self, start: int, n: int) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None]:
        idx = np.arange(start, start + n) % len(self)
        labels = None if self.labels is None else self.labels[idx]
        return self.context[idx], tuple(self.captions[i] for i in idx), labels


def is_builtin_digits(uri: str) -> bool:
    return uri in ("builtin:digits", "builtin:digits-test")


def load(run: RunConfig) -> Prompts:
    ref = run.data.reference_set
    dim, tokens = run.model.context_dim, run.model.context_tokens
    if is_builtin_digits(ref.uri):
        from ladder_trainer.data import digits

        split = digits.from_uri(ref.uri)
        return Prompts(
            captions=split.captions, context=split.context(dim, tokens),
            uncond=digits.null_context(dim, tokens), labels=split.labels, images=split.images,
        )
    if ref.uri.startswith("builtin:"):
        raise UserError(f"data.referenceSet.uri {ref.uri!r}: known builtin sets are builtin:digits-test")
    try:
        raw = read_bytes(ref.uri)
    except FileNotFoundError:
        raise UserError(
            f"reference prompts not found at {ref.uri} (data.referenceSet.uri): it must be an .npz "
            "with captions, context and uncond arrays"
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
    _check_encoder(meta.get("text_encoder"), run.data.text_encoder, ref.uri)
    return Prompts(captions, context, uncond, labels, None, "sha256:" + hashlib.sha256(raw).hexdigest())


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
