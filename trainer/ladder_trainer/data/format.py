"""The training-set format `ladder-latents/v2`: fixed-size records, one range read per example.

A training set is a folder (local path, file:// or gs://):

  manifest.json          written last, by whoever commits the last part: the dataset exists
                         when it does. Format version, record layout, encoders, parts, skips.
  null_context.npy       float32 [T, D]: the text encoder's embedding of the empty prompt.
  prepare.json           the settings the parts were made with (``ladder prepare`` refuses to
                         add parts made with other settings).
  parts/part-NNNNNN.npy  one part per preparation work unit: a NumPy .npy file of a structured
                         array [n] with fields ``latents`` [H, W, C] and ``context`` [T, D]
                         (little-endian float16 or float32; latents already multiplied by the
                         autoencoder's scaling factor). ``np.load(path, mmap_mode="r")`` reads it.
  parts/part-NNNNNN.json its commit marker, written after the .npy: examples, skipped items.

Why this layout (ArrayRecord and zarr were the alternatives):
- Example i of a part is the bytes [offset + i * R, offset + (i + 1) * R) of one object, with R
  and the offset in the manifest: a random read is one ranged GET, no index to fetch first (a
  zarr v3 shard needs its shard index too, two requests per array; one object per example would
  be 600M objects). array_record 0.8.6's reader does not open gs:// through the emulator here
  (it hangs), so it could not be tested; this layout reads through tensorstore's kvstore, which
  does (TENSORSTORE_GCS_HTTP_URL) and is the same stack orbax uses for checkpoints.
- Latents and context of one example are adjacent: one request, not two.
- It is plain .npy: any NumPy reads a part with no Ladder code.

Footprint at the paper's scale (600M pairs, 64x64x4 latents, 77x1024 OpenCLIP context): a record
is 16,384 + 78,848 = 95,232 values: 380,928 bytes as float32 (229 TB), 190,464 bytes as float16
(114 TB). float16 is the default: it halves the bytes, and for these value ranges (|x| well below
65,504; the writer refuses non-finite values after the cast) it keeps 3 more mantissa bits than
bfloat16, which NumPy's .npy cannot describe anyway.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from ladder_api import storage
from ladder_api.artifacts import DATA_MANIFEST

FORMAT = "ladder-latents/v2"
OLD_FORMATS = ("ladder-latents/v1",)
MANIFEST = DATA_MANIFEST
NULL_CONTEXT = "null_context.npy"
SETTINGS = "prepare.json"
PARTS = "parts"
DTYPES = ("float16", "float32")
CONVERT_COMMAND = "ladder prepare convert-v1"


def part_name(index: int) -> str:
    return f"{PARTS}/part-{index:06d}"


@dataclass(frozen=True)
class Layout:
    """The record: latents [H, W, C] then context [T, D], both of one storage dtype."""

    latent_shape: tuple[int, int, int]
    context_shape: tuple[int, int]
    dtype: str = "float16"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"storage dtype {self.dtype!r}: one of {', '.join(DTYPES)}")
        object.__setattr__(self, "latent_shape", tuple(int(x) for x in self.latent_shape))
        object.__setattr__(self, "context_shape", tuple(int(x) for x in self.context_shape))

    @property
    def numpy_dtype(self) -> np.dtype:
        scalar = np.dtype(self.dtype).newbyteorder("<")
        return np.dtype([("latents", scalar, self.latent_shape), ("context", scalar, self.context_shape)])

    @property
    def record_bytes(self) -> int:
        return self.numpy_dtype.itemsize

    def to_json(self) -> dict:
        return {"latents": {"shape": list(self.latent_shape), "dtype": self.dtype},
                "context": {"shape": list(self.context_shape), "dtype": self.dtype},
                "record_bytes": self.record_bytes}

    @classmethod
    def from_json(cls, d: dict) -> Layout:
        if d["latents"]["dtype"] != d["context"]["dtype"]:
            raise ValueError("latents and context must share one dtype")
        layout = cls(tuple(d["latents"]["shape"]), tuple(d["context"]["shape"]), d["latents"]["dtype"])
        if int(d.get("record_bytes", layout.record_bytes)) != layout.record_bytes:
            raise ValueError(f"record_bytes {d['record_bytes']} does not match the shapes and dtype")
        return layout


@dataclass(frozen=True)
class Part:
    path: str  # relative to the dataset root
    num_examples: int
    offset: int  # bytes before the first record (the .npy header)


@dataclass(frozen=True)
class Manifest:
    layout: Layout
    autoencoder: dict  # kind, hash, scaling_factor, config, weights_uri
    text_encoder: dict  # name, hash, width, tokens, weights_uri
    parts: tuple[Part, ...]
    null_context: str = NULL_CONTEXT
    skipped: dict = field(default_factory=dict)  # reason -> count
    extra: dict = field(default_factory=dict)  # image size, source, prepare settings: provenance

    @property
    def num_examples(self) -> int:
        return sum(p.num_examples for p in self.parts)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.layout.latent_shape

    @property
    def context_shape(self) -> tuple[int, int]:
        return self.layout.context_shape

    def to_json(self) -> dict:
        return {
            "format": FORMAT, "num_examples": self.num_examples, **self.layout.to_json(),
            "autoencoder": self.autoencoder, "text_encoder": self.text_encoder,
            "null_context": self.null_context,
            "skipped": {"total": sum(self.skipped.values()), "by_reason": dict(sorted(self.skipped.items()))},
            "parts": [[p.path, p.num_examples, p.offset] for p in self.parts],
            **self.extra,
        }

    @classmethod
    def from_json(cls, d: dict) -> Manifest:
        fmt = d.get("format")
        if fmt in OLD_FORMATS:
            raise OldFormatError(fmt)
        if fmt != FORMAT:
            raise ValueError(f"format is {fmt!r}, expected {FORMAT!r}")
        parts = tuple(Part(str(p), int(n), int(o)) for p, n, o in d["parts"])
        if sum(p.num_examples for p in parts) != int(d["num_examples"]):
            raise ValueError("num_examples does not equal the sum of the parts' examples")
        known = {"format", "num_examples", "latents", "context", "record_bytes", "autoencoder",
                 "text_encoder", "null_context", "skipped", "parts"}
        return cls(
            layout=Layout.from_json(d), autoencoder=dict(d["autoencoder"]),
            text_encoder=dict(d["text_encoder"]), parts=parts,
            null_context=str(d.get("null_context", NULL_CONTEXT)),
            skipped=dict(d.get("skipped", {}).get("by_reason", {})),
            extra={k: v for k, v in d.items() if k not in known},
        )


class OldFormatError(ValueError):
    """A v1 (npz shards) dataset: no per-example access and no encoder hashes; convert it."""


def read_manifest(uri: str) -> Manifest:
    return Manifest.from_json(json.loads(storage.read_text(storage.join(uri, MANIFEST))))


def write_manifest(uri: str, manifest: Manifest) -> None:
    storage.write_text(storage.join(uri, MANIFEST), json.dumps(manifest.to_json(), indent=1) + "\n")


def write_null_context(uri: str, null_context) -> None:
    import io

    buf = io.BytesIO()
    np.save(buf, np.asarray(null_context, np.float32))
    storage.write_bytes(storage.join(uri, NULL_CONTEXT), buf.getvalue())


def read_null_context(uri: str, manifest: Manifest) -> np.ndarray:
    import io

    return np.load(io.BytesIO(storage.read_bytes(storage.join(uri, manifest.null_context))))


# --- writing a part ------------------------------------------------------------------------------

_MAGIC = b"\x93NUMPY\x01\x00"
_MAX_RECORDS = 10**12  # the header is sized for this many records, then rewritten with the count


def _header(layout: Layout, n: int, size: int | None = None) -> bytes:
    """A version 1.0 .npy header for [n] records, space-padded to `size` bytes (a multiple of 64)."""
    from numpy.lib import format as npy

    text = repr({"descr": npy.dtype_to_descr(layout.numpy_dtype), "fortran_order": False, "shape": (n,)})
    body = text.encode("latin1")
    need = len(_MAGIC) + 2 + len(body) + 1
    size = size or -(-need // 64) * 64
    if need > size:
        raise ValueError("header does not fit its reserved size")
    body += b" " * (size - need) + b"\n"
    return _MAGIC + (len(body)).to_bytes(2, "little") + body


class PartWriter:
    """Appends records to a local staging file; ``commit`` uploads it whole, then its marker.

    A part is visible only once its marker exists, and the marker is written after the data
    object is complete, so an interrupted writer leaves no part a reader or a re-run trusts.
    """

    def __init__(self, layout: Layout, staging_path: str | os.PathLike):
        self.layout = layout
        self.path = str(staging_path)
        self.offset = len(_header(layout, _MAX_RECORDS))
        self.count = 0
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in commit/abort
        self._file.write(b"\0" * self.offset)

    def write(self, latents: np.ndarray, context: np.ndarray) -> None:
        """Append examples: latents [n, H, W, C], context [n, T, D] (any float dtype)."""
        latents, context = np.asarray(latents), np.asarray(context)
        n = len(latents)
        if len(context) != n:
            raise ValueError(f"{n} latents but {len(context)} contexts")
        records = np.empty(n, self.layout.numpy_dtype)
        records["latents"] = latents
        records["context"] = context
        for name in ("latents", "context"):
            if not np.all(np.isfinite(records[name])):
                raise ValueError(f"{name} are not finite in {self.layout.dtype} (overflow?): store float32")
        self._file.write(records.tobytes())
        self.count += n

    def finish(self) -> str:
        """Fix the header's record count; the staging file is then a complete .npy."""
        self._file.seek(0)
        self._file.write(_header(self.layout, self.count, self.offset))
        self._file.close()
        return self.path

    def commit(self, root: str, name: str, marker: dict) -> Part:
        """Upload `<root>/<name>.npy`, then `<name>.json` (marker plus the part's geometry)."""
        storage.upload_file(self.finish(), storage.join(root, f"{name}.npy"))
        part = Part(f"{name}.npy", self.count, self.offset)
        body = {**marker, "path": part.path, "num_examples": part.num_examples, "offset": part.offset,
                "record_bytes": self.layout.record_bytes}
        storage.write_text(storage.join(root, f"{name}.json"), json.dumps(body, indent=1) + "\n")
        return part

    def abort(self) -> None:
        self._file.close()


def read_marker(root: str, name: str) -> dict | None:
    """A committed part's marker, or None when the part is not committed."""
    try:
        return json.loads(storage.read_text(storage.join(root, f"{name}.json")))
    except FileNotFoundError:
        return None


def write_dataset(uri: str, latents, context, null_context, *, autoencoder: dict, text_encoder: dict | str,
                  dtype: str = "float32", part_size: int = 1024, staging_dir: str | None = None) -> Manifest:
    """Arrays -> a complete dataset in one process (tests, conversions; `ladder prepare` writes
    the same parts from many workers)."""
    import tempfile

    latents, context = np.asarray(latents), np.asarray(context)
    if len(latents) != len(context):
        raise ValueError("latents and context must have the same number of examples")
    if isinstance(text_encoder, str):
        text_encoder = {"name": text_encoder, "hash": None}
    layout = Layout(latents.shape[1:], context.shape[1:], dtype)
    parts = []
    with tempfile.TemporaryDirectory(prefix="ladder-part-") as tmp:
        for k, start in enumerate(range(0, max(len(latents), 1), part_size)):
            writer = PartWriter(layout, os.path.join(staging_dir or tmp, f"part-{k}.npy"))
            writer.write(latents[start:start + part_size], context[start:start + part_size])
            parts.append(writer.commit(uri, part_name(k), {}))
    write_null_context(uri, null_context)
    manifest = Manifest(layout, dict(autoencoder), dict(text_encoder), tuple(parts))
    write_manifest(uri, manifest)
    return manifest
