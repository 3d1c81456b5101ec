"""Shared fixtures: the digits classifier is trained once per session into a temp cache; tiny
random open_clip models saved as weights files with their config sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_clip(directory: Path, model_cfg: dict | None = None, seed: int = 0) -> Path:
    """A random open_clip model (TINY_CLIP unless given) as clip.safetensors + open_clip_config.json."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from ladder_evaluator.metrics import clip_score

    (directory / clip_score.SIDECAR).write_text(json.dumps({"model_cfg": model_cfg or TINY_CLIP}))
    name = clip_score._register_sidecar(directory / clip_score.SIDECAR)
    torch.manual_seed(seed)
    model = open_clip.create_model(name)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / "clip.safetensors"))
    return directory / "clip.safetensors"


@pytest.fixture(scope="session")
def classifier_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluator-cache")


@pytest.fixture(scope="session")
def digits_extractor(classifier_cache):
    from ladder_evaluator.metrics import digits_classifier

    return digits_classifier.extractor(classifier_cache)
