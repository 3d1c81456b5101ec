"""Evaluation prompts from the reference set: captions, their text embeddings, the unconditional
embedding and (for digits) the prompted label.

- builtin:digits-test (and builtin:digits): the digits held-out split with its captions, embedded
  by the builtin text encoder exactly as the trainer embeds them.
- anything else: an .npz at data.referenceSet.uri (local path or gs://) with arrays
  `captions` [N] (str), `context` [N, contextTokens, contextDim] (float) and `uncond`
  [contextTokens, contextDim]; embeddings are precomputed with the frozen text encoder, as the
  training shards are, so the evaluator never runs a text encoder.
Sample i uses prompt i mod N, so every measurement sees the same prompts in the same order.
"""

from __future__ import annotations

import io
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
    except (KeyError, ValueError, OSError) as err:
        raise UserError(
            f"reference prompts at {ref.uri} must be an .npz with arrays captions, context, uncond ({err})"
        ) from None
    if context.shape[1:] != (tokens, dim) or uncond.shape != (tokens, dim) or len(context) != len(captions):
        raise UserError(
            f"reference prompts at {ref.uri}: context {context.shape} / uncond {uncond.shape} do not "
            f"match {len(captions)} captions x ladder.contextTokens {tokens} x ladder.contextDim {dim}"
        )
    return Prompts(captions, context, uncond, labels, None)
