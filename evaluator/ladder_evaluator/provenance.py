"""What every result records about how it was measured beyond its grid point: the weights that
shaped the model (initialisation and EMA schemes), the numbers the sampler ran in, and the
identity of every frozen input that scores it (text encoder, autoencoder, CLIP model and weights,
the reference prompts and statistics). Two results with equal settings are comparable; a
difference here is the first thing to look at when two runs of "the same" study disagree.

The one place these are recorded (keys ending in Sha256, plus referenceStats): every hash is
``sha256:<hex>`` of the bytes read, the form ``ladder prepare`` prints, its manifests and
reference.json record and data.*.hash pins, so a result's settings compare to those as they are.
None of these keys feeds a result's id or the evaluation hash (ladder_api.grid): they describe a
measurement, they do not name it.
"""

from __future__ import annotations

import functools
import os

from ladder_api import storage
from ladder_api.plan import RunConfig
from ladder_trainer.weights.hashing import PREFIX, file_sha256


def file_digest(uri: str | None) -> str | None:
    """sha256:<hex> of a file (streamed), or None when it is unset or cannot be read here."""
    if not uri:
        return None
    try:
        if storage.is_remote(uri):
            return PREFIX + file_sha256(uri)
        path = str(storage.local_path(uri.removeprefix("file://")))
        st = os.stat(path)
        return _local_digest(path, st.st_size, st.st_mtime_ns)
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=32)
def _local_digest(path: str, size: int, mtime_ns: int) -> str:  # size/mtime: the cache key
    return PREFIX + file_sha256(path)


def ema_scheme(run: RunConfig) -> str:
    ema = run.training.ema
    if not ema.enabled:
        return "off"
    return f"decay {ema.decay:g}" + (", warm-up (1+n)/(10+n)" if ema.warmup else "")


def text_encoder_name(run: RunConfig) -> str:
    te = run.data.text_encoder
    return str(getattr(te, "name", te))


def settings(run: RunConfig, *, sampling_dtype: str, prompts=None, autoencoder_sha256: str | None = None,
             stats: str | None = None, clip_model: str | None = None) -> dict[str, str]:
    """The recorded settings shared by every result of one evaluation (strings, as
    Result.settings holds). The hashes are of what the evaluation read: the prompts file and the
    text encoder weights its embeddings were made with (prompts: a prompts.Prompts), the
    autoencoder weights that decoded the samples (decode.Decoder.weights_hash); stats: the
    reference statistics' hash or how they were made."""
    out = {
        "initialization": run.training.initialization.value,
        "ema": ema_scheme(run),
        "samplingDtype": sampling_dtype,
        "textEncoder": text_encoder_name(run),
    }
    found = {
        "textEncoderWeightsSha256": getattr(prompts, "text_encoder_sha256", None),
        "autoencoderWeightsSha256": autoencoder_sha256,
        "referencePromptsSha256": getattr(prompts, "sha256", None),
        "referenceStats": stats,
    }
    out |= {k: v for k, v in found.items() if v}
    ev = run.evaluation
    if clip_model is not None:
        out["clipModel"] = clip_model
        out["clipPretrained"] = ev.clip_pretrained
        digest = file_digest(ev.clip_weights_uri)
        if digest:
            out["clipWeightsSha256"] = digest
    return out
