"""What every result records about how it was measured beyond its grid point: the weights that
shaped the model (initialisation and EMA schemes), the numbers the sampler ran in, and the
identity of every frozen input that scores it (text encoder, autoencoder, CLIP model and weights,
the reference prompts and statistics). Two results with equal settings are comparable; a
difference here is the first thing to look at when two runs of "the same" study disagree.

Hashes are SHA-256 (16 hex digits) of the bytes read, so they name the content, not the path.
"""

from __future__ import annotations

import functools
import hashlib
import os

from ladder_api import storage
from ladder_api.plan import RunConfig

CHUNK = 1 << 22


def file_digest(uri: str | None) -> str | None:
    """SHA-256 (16 hex digits) of a file, or None when it is unset or cannot be read here."""
    if not uri:
        return None
    try:
        if storage.is_remote(uri):
            return hashlib.sha256(storage.read_bytes(uri)).hexdigest()[:16]
        path = str(storage.local_path(uri.removeprefix("file://")))
        st = os.stat(path)
        return _local_digest(path, st.st_size, st.st_mtime_ns)
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=32)
def _local_digest(path: str, size: int, mtime_ns: int) -> str:  # size/mtime: the cache key
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()[:16]


def ema_scheme(run: RunConfig) -> str:
    ema = run.training.ema
    if not ema.enabled:
        return "off"
    return f"decay {ema.decay:g}" + (", warm-up (1+n)/(10+n)" if ema.warmup else "")


def text_encoder_name(run: RunConfig) -> str:
    te = run.data.text_encoder
    return str(getattr(te, "name", te))


def settings(run: RunConfig, *, sampling_dtype: str, prompts_sha256: str = "",
             stats: str | None = None, clip_model: str | None = None) -> dict[str, str]:
    """The recorded settings shared by every result of one evaluation (strings, as
    Result.settings holds). stats: the reference statistics' digest or how they were made."""
    ev, data = run.evaluation, run.data
    out = {
        "initialization": run.training.initialization.value,
        "ema": ema_scheme(run),
        "samplingDtype": sampling_dtype,
        "textEncoder": text_encoder_name(run),
    }
    weights = file_digest(data.autoencoder.weights_uri) if data.autoencoder.kind != "identity" else None
    if weights:
        out["autoencoderWeightsSha256"] = weights
    if prompts_sha256:
        out["referencePromptsSha256"] = prompts_sha256.removeprefix("sha256:")[:16]
    if stats:
        out["referenceStats"] = stats
    if clip_model is not None:
        out["clipModel"] = clip_model
        out["clipPretrained"] = ev.clip_pretrained
        digest = file_digest(ev.clip_weights_uri)
        if digest:
            out["clipWeightsSha256"] = digest
    return out
