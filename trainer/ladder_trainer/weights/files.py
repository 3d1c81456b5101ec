"""Reading and writing a diffusers model folder (``config.json`` + ``diffusion_pytorch_model.safetensors``)
on a local path, file:// or gs:// (etils.epath; gcsfs for gs://).

A local file is memory-mapped by safetensors, so a tensor is read when asked for; a remote one is
first copied to a local temporary file in 16 MiB pieces (a 3.4 GB U-Net never sits in memory as
one bytes object). Every failure a user can cause (no such folder, no config.json, not a
safetensors file, unreadable bucket) becomes one UserError naming the path.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator

import ml_dtypes  # noqa: F401 - registers bfloat16 with numpy, so bf16 safetensors files load
import numpy as np
from etils import epath

from ladder_api.errors import UserError

CONFIG = "config.json"
WEIGHTS = "diffusion_pytorch_model.safetensors"
_CHUNK = 16 << 20


def path(uri: str) -> epath.Path:
    return epath.Path(uri[len("file://"):] if uri.startswith("file://") else str(uri))


def locate(uri: str, subfolder: str) -> tuple[epath.Path, epath.Path]:
    """(config.json, weights file) for a model folder, a pipeline folder holding ``subfolder``
    (e.g. a Stable Diffusion download's ``vae/``), or a .safetensors file beside its config.json."""
    p = path(uri)
    if p.name.endswith(".safetensors"):
        return p.parent / CONFIG, p
    if not _exists(p / CONFIG, uri) and _exists(p / subfolder / CONFIG, uri):
        p = p / subfolder
    return p / CONFIG, p / WEIGHTS


def _exists(p: epath.Path, uri: str) -> bool:
    try:
        return p.exists()
    except Exception as err:  # noqa: BLE001 - permission, network, bucket missing...
        raise UserError(f"{uri}: cannot read ({err.__class__.__name__}: {err})") from None


def read_config(p: epath.Path, what: str) -> dict:
    if not _exists(p, str(p)):
        raise UserError(f"{p}: not found; {what} must be a diffusers model folder holding {CONFIG} "
                        f"and {WEIGHTS}")
    try:
        cfg = json.loads(p.read_text())
    except ValueError as err:
        raise UserError(f"{p}: not valid JSON ({err})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{p}: expected a JSON object (a diffusers model config)")
    return cfg


@contextlib.contextmanager
def open_tensors(p: epath.Path) -> Iterator:
    """A safetensors handle (``keys()``, ``get_slice(k).get_shape()``, ``get_tensor(k)``)."""
    from safetensors import safe_open

    if not _exists(p, str(p)):
        found = sorted(x.name for x in p.parent.iterdir()) if _exists(p.parent, str(p)) else []
        raise UserError(f"{p}: not found (the folder holds {found or 'nothing'}); expected the "
                        "model's weights in safetensors format")
    with contextlib.ExitStack() as stack:
        local = p
        if _remote(p):
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ladder-weights-"))
            local = epath.Path(tmp) / p.name
            _copy(p, local)
        try:
            handle = stack.enter_context(safe_open(str(local), framework="numpy"))
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
            raise UserError(
                f"{p}: not a readable safetensors file ({err}); re-download or re-save it") from None
        yield handle


def _remote(p: epath.Path) -> bool:
    return "://" in str(p)


def _copy(src: epath.Path, dst: epath.Path) -> None:
    with src.open("rb") as r, dst.open("wb") as w:
        shutil.copyfileobj(r, w, _CHUNK)


def shapes(handle) -> dict[str, tuple[int, ...]]:
    return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118


def write_model(uri: str, config: dict, tensors: dict[str, np.ndarray]) -> epath.Path:
    """config.json and the safetensors file (torch's ``format: pt`` metadata, so diffusers'
    ``from_pretrained`` reads the folder as one it wrote)."""
    from safetensors.numpy import save_file

    folder = path(uri)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ladder-weights-") as tmp:
        local = epath.Path(tmp) / WEIGHTS
        save_file(tensors, str(local), metadata={"format": "pt"})
        _copy(local, folder / WEIGHTS)
    (folder / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder
