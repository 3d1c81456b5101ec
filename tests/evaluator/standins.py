"""Small stand-ins for the evaluator's real weights, which cannot be downloaded here: a TorchScript
module with the interface clean-fid's Inception wrapper calls, and a tiny random open_clip model
with its config beside the weights (the sidecar clip_score reads). The real code paths load them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_CLIP = {"model_cfg": {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}}


class _Layers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.mean(dim=(2, 3)))


class _FakeInception(torch.nn.Module):
    """Stands in for inception-2015-12-05.pt: same interface clean-fid's wrapper uses."""

    def __init__(self):
        super().__init__()
        self.layers = _Layers()

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        return self.layers(x)


def fake_inception(path: Path) -> Path:
    torch.manual_seed(0)
    torch.jit.script(_FakeInception()).save(str(path))
    return path


def tiny_clip(directory: Path, filename: str = "clip.safetensors") -> tuple[str, Path]:
    """(registered open_clip model name, weights file) of a tiny random CLIP model; the config is
    written beside the weights as clip_score's sidecar."""
    import open_clip
    from safetensors.torch import save_file

    from ladder_evaluator.metrics import clip_score

    sidecar = directory / clip_score.SIDECAR
    sidecar.write_text(json.dumps(TINY_CLIP))
    name = clip_score._register_sidecar(sidecar)
    torch.manual_seed(0)
    model = open_clip.create_model(name)
    weights = directory / filename
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return name, weights
