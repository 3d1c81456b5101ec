"""Evaluation prompts from the reference set: captions, their text embeddings, the unconditional
embedding and (for digits) the prompted label.

- builtin:digits-test (and builtin:digits): the digits held-out split with its captions, embedded
  by the builtin text encoder exactly as the trainer embeds them.
- anything else: an .npz at data.referenceSet.uri (local path or gs://) with arrays
  `captions` [N] (str), `context` [N, contextTokens, contextDim] (float) and `uncond`
  [contextTokens, contextDim]; embeddings are precomputed with the frozen text encoder, as the
  training shards are, so the evaluator never runs a text encoder.
At the paper's scale the embeddings are 30,000 x 77 x 1024 (4.7 GB in float16): the file is read
once to a local file (hashed as it streams) and `context` is a memory map of it, so an evaluator
holds only the rows of the batch in flight, never the whole set. Sample i uses prompt i (load
refuses fewer prompts than evaluation.numSamples: wrapping around would score repeated prompts),
so every measurement sees the same prompts in the same order. The unconditional embedding must be
the training data's null context: guidance extrapolates away from the embedding the model learned
as "no prompt", and any other one is a different model input.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ladder_api import storage
from ladder_api.errors import UserError
from ladder_api.plan import RunConfig


@dataclass(frozen=True)
class Prompts:
    captions: tuple[str, ...]
    context: np.ndarray  # [N, T, D], float16 or float32; a memory map for a prompts file
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
        context = np.asarray(self.context[idx], np.float32)
        return context, tuple(self.captions[i] for i in idx), labels


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
        path, sha = _local_copy(ref.uri)
    except FileNotFoundError:
        raise UserError(
            f"reference prompts not found at {ref.uri} (data.referenceSet.uri): it must be an .npz "
            "with captions, context and uncond arrays (`ladder prepare reference` writes one)"
        ) from None
    try:
        with zipfile.ZipFile(path) as z:
            captions = tuple(str(c) for c in _member(z, path, "captions"))
            context = _member(z, path, "context", mapped=True)
            uncond = np.asarray(_member(z, path, "uncond"), np.float32)
            labels = _member(z, path, "labels") if "labels.npy" in z.namelist() else None
            meta = json.loads(str(_member(z, path, "meta"))) if "meta.npy" in z.namelist() else {}
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as err:
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
    return Prompts(captions, context, uncond, labels, None, sha, made.get("hash"))


_CHUNK = 1 << 20


def _local_copy(uri: str) -> tuple[Path, str]:
    """A local file holding `uri` and its sha256:<hex>. A gs:// object is streamed into the
    temporary folder once per load, never held in memory."""
    if not storage.is_remote(uri):
        path = storage.local_path(uri)
        with path.open("rb") as f:
            return path, _digest_stream(f)
    folder = Path(tempfile.gettempdir()) / "ladder-prompts"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (hashlib.sha256(uri.encode()).hexdigest()[:32] + ".npz")
    # A part file of this process's own: evaluator workers on one machine (`ladder run -j`) may
    # copy the same object at once; each maps the file it renamed, which a later rename leaves intact.
    fd, name = tempfile.mkstemp(dir=folder, prefix=target.stem + ".", suffix=".part")
    part = Path(name)
    try:
        with storage.open_read(uri) as src, os.fdopen(fd, "wb") as out:
            h = hashlib.sha256()
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target, "sha256:" + h.hexdigest()


def _digest_stream(f) -> str:
    """sha256:<hex> of a file read through one reused buffer."""
    h, buf = hashlib.sha256(), memoryview(bytearray(_CHUNK))
    while n := f.readinto(buf):
        h.update(buf[:n])
    return "sha256:" + h.hexdigest()


def _member(z: zipfile.ZipFile, path: Path, name: str, *, mapped: bool = False) -> np.ndarray:
    """An array of the .npz; `mapped`: a read-only memory map of an uncompressed member (what
    np.savez writes), read whole only when the member is compressed."""
    info = z.getinfo(name + ".npy")
    with z.open(info) as f:
        if not mapped or info.compress_type != zipfile.ZIP_STORED:
            return np.lib.format.read_array(f, allow_pickle=False)
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
            version, np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        header_len = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects")
    offset = _data_offset(path, info) + header_len
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def _data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes start: after its local header, whose name and extra field
    lengths can differ from the central directory's."""
    with path.open("rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
    name_len, extra_len = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_len + extra_len


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
