"""Reading and writing a diffusers model folder (``config.json`` + ``diffusion_pytorch_model.safetensors``)
on a local path, file:// or gs://, through ladder_api.storage (the one storage layer).

A local file is memory-mapped by safetensors, so a tensor is read when asked for; a remote one is
first streamed to a local temporary file (a 3.4 GB U-Net never sits in memory as one bytes
object). Every failure a user can cause (no such folder, no config.json, not a safetensors file,
unreadable bucket) becomes one UserError naming the path.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import ml_dtypes  # noqa: F401 - registers bfloat16 with numpy, so bf16 safetensors files load
import numpy as np

from ladder_api import storage
from ladder_api.errors import UserError

CONFIG = "config.json"
WEIGHTS = "diffusion_pytorch_model.safetensors"
_CHUNK = 16 << 20


def _parent(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[0] if "/" in uri.rstrip("/") else "."


def locate(uri: str, subfolder: str) -> tuple[str, str]:
    """(config.json, weights file) for a model folder, a pipeline folder holding ``subfolder``
    (e.g. a Stable Diffusion download's ``vae/``), or a .safetensors file beside its config.json."""
    uri = str(uri)
    if uri.endswith(".safetensors"):
        return storage.join(_parent(uri), CONFIG), uri
    if not _exists(storage.join(uri, CONFIG), uri) and _exists(storage.join(uri, subfolder, CONFIG), uri):
        uri = storage.join(uri, subfolder)
    return storage.join(uri, CONFIG), storage.join(uri, WEIGHTS)


def _exists(uri: str, what: str) -> bool:
    try:
        return storage.exists(uri)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - permission, network...
        raise UserError(f"{what}: cannot read ({err.__class__.__name__}: {err})") from None


def read_config(uri: str, what: str) -> dict:
    if not _exists(uri, uri):
        raise UserError(f"{uri}: not found; {what} must be a diffusers model folder holding {CONFIG} "
                        f"and {WEIGHTS}")
    try:
        cfg = json.loads(storage.read_text(uri))
    except ValueError as err:
        raise UserError(f"{uri}: not valid JSON ({err})") from None
    if not isinstance(cfg, dict):
        raise UserError(f"{uri}: expected a JSON object (a diffusers model config)")
    return cfg


@contextlib.contextmanager
def open_tensors(uri: str) -> Iterator:
    """A safetensors handle (``keys()``, ``get_slice(k).get_shape()``, ``get_tensor(k)``)."""
    from safetensors import safe_open

    if not _exists(uri, uri):
        folder = _parent(uri)
        found = sorted(storage.list_dir(folder)) if _exists(folder, uri) else []
        raise UserError(f"{uri}: not found (the folder holds {found or 'nothing'}); expected the "
                        "model's weights in safetensors format")
    with contextlib.ExitStack() as stack:
        local = storage.local_path(uri) if not storage.is_remote(uri) else None
        if local is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ladder-weights-"))
            local = Path(tmp) / uri.rsplit("/", 1)[-1]
            with storage.open_read(uri) as r, local.open("wb") as w:
                shutil.copyfileobj(r, w, _CHUNK)
        try:
            handle = stack.enter_context(safe_open(str(local), framework="numpy"))
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
            raise UserError(
                f"{uri}: not a readable safetensors file ({err}); re-download or re-save it") from None
        yield handle


def shapes(handle) -> dict[str, tuple[int, ...]]:
    return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118


def write_model(uri: str, config: dict, tensors: dict[str, np.ndarray]) -> str:
    """config.json and the safetensors file (torch's ``format: pt`` metadata, so diffusers'
    ``from_pretrained`` reads the folder as one it wrote); the weights first, the config last, so
    a folder with a config.json is complete."""
    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory(prefix="ladder-weights-") as tmp:
        local = Path(tmp) / WEIGHTS
        save_file(tensors, str(local), metadata={"format": "pt"})
        storage.upload_file(local, storage.join(uri, WEIGHTS))
    storage.write_text(storage.join(uri, CONFIG), json.dumps(config, indent=2, sort_keys=True) + "\n")
    return uri
