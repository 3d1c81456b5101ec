"""The builtin text encoder (`textEncoder: builtin-digits`): a fixed, seeded embedding per word.

It stands in for CLIP on this machine, where no weights may be downloaded. It is deterministic
across processes and machines (a word's vector is seeded by a SHA-256 of the word, not Python's
salted hash), so the trainer and the evaluator embed the same caption identically. A caption is
lower-cased, split on whitespace, truncated or padded to `context_tokens` with a pad vector, and
each token gets a fixed positional vector added, so word order matters as it does for CLIP.
The unconditional embedding is the encoding of the empty caption (all pad tokens), as SD uses
the empty prompt.
"""

from __future__ import annotations

import hashlib

import numpy as np

NAME = "builtin-digits"
PAD = "<pad>"


def _vector(key: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class BuiltinTextEncoder:
    def __init__(self, context_dim: int, context_tokens: int):
        self.context_dim = context_dim
        self.context_tokens = context_tokens
        self._cache: dict[str, np.ndarray] = {}
        self._positions = np.stack(
            [0.5 * _vector(f"<pos:{i}>:{context_dim}", context_dim) for i in range(context_tokens)]
        )

    def _word(self, word: str) -> np.ndarray:
        if word not in self._cache:
            self._cache[word] = _vector(f"{word}:{self.context_dim}", self.context_dim)
        return self._cache[word]

    def tokens(self, caption: str) -> list[str]:
        words = caption.lower().split()[: self.context_tokens]
        return words + [PAD] * (self.context_tokens - len(words))

    def encode_one(self, caption: str) -> np.ndarray:
        """[context_tokens, context_dim] float32."""
        return np.stack([self._word(w) for w in self.tokens(caption)]) + self._positions

    def encode(self, captions) -> np.ndarray:
        """[N, context_tokens, context_dim] float32."""
        return np.stack([self.encode_one(c) for c in captions]).astype(np.float32)

    def null(self) -> np.ndarray:
        """The unconditional embedding (empty caption), [context_tokens, context_dim]."""
        return self.encode_one("")
