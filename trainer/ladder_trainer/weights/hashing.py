"""Weight hashes: what identifies the exact encoder weights a training set was made with.

``sha256:<hex>`` of the weights file's bytes (read as a stream: local, file:// or gs://). A model
split over several weight files hashes the sorted list of ``<name> <sha256>`` lines, so the hash
depends on every byte and on nothing else (not on paths, dates or tokenizer files).
"""

from __future__ import annotations

import hashlib

from ladder_api import storage

PREFIX = "sha256:"
_CHUNK = 16 << 20


def file_sha256(uri: str) -> str:
    digest = hashlib.sha256()
    with storage.open_read(str(uri)) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def weights_hash(uris: list[str]) -> str:
    """The hash of one weights file, or of several (a sharded checkpoint)."""
    if len(uris) == 1:
        return PREFIX + file_sha256(uris[0])
    lines = sorted(f"{str(u).rstrip('/').rsplit('/', 1)[-1]} {file_sha256(u)}" for u in uris)
    return PREFIX + hashlib.sha256("\n".join(lines).encode()).hexdigest()
