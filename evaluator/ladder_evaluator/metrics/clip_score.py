"""CLIP score with open_clip: the mean cosine similarity between each generated image's and its
prompt's CLIP embeddings (no x100 and no clipping at 0, the scale of the paper's 0.30-0.31).

Weights come from a local file (evaluation.clipWeightsUri), never downloaded. The architecture is
evaluation.clipModel (ViT-B-32 by default) unless an `open_clip_config.json` (open_clip's own
format: {"model_cfg": {...}, "preprocess_cfg": {...}}) sits beside the weights; then that config
is registered under a private name and used, which is also how tests run the real code path on a
tiny random model.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ladder_api.errors import UserError
from ladder_evaluator.metrics.fid import default_device
from ladder_evaluator.metrics.images import to_uint8_rgb

DEFAULT_MODEL = "ViT-B-32"
SIDECAR = "open_clip_config.json"


@dataclass
class ClipScorer:
    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    device: torch.device
    model_name: str

    def score(self, images, captions, batch_size: int = 64) -> float:
        """Mean cosine similarity of image and caption embeddings over all pairs given."""
        return float(self.similarities(images, captions, batch_size).mean())

    @torch.no_grad()
    def similarities(self, images, captions, batch_size: int = 64) -> np.ndarray:
        """Cosine similarity of each image with its caption (the score's interval needs them)."""
        u8 = to_uint8_rgb(images)
        if len(u8) != len(captions):
            raise ValueError(f"{len(u8)} images but {len(captions)} captions")
        sims = []
        for s in range(0, len(u8), batch_size):
            pix = torch.stack([self.preprocess(Image.fromarray(im)) for im in u8[s:s + batch_size]])
            img = self.model.encode_image(pix.to(self.device)).float()
            tokens = self.tokenizer(list(captions[s:s + batch_size])).to(self.device)
            txt = self.model.encode_text(tokens).float()
            img = img / img.norm(dim=-1, keepdim=True)
            txt = txt / txt.norm(dim=-1, keepdim=True)
            sims.append((img * txt).sum(dim=-1).cpu().numpy())
        return np.concatenate(sims).astype(np.float64)


def _register_sidecar(config_path: Path) -> str:
    import open_clip

    cfg = json.loads(config_path.read_text())
    model_cfg = cfg.get("model_cfg", cfg)
    name = "ladder-" + hashlib.sha256(json.dumps(model_cfg, sort_keys=True).encode()).hexdigest()[:10]
    tmp = Path(tempfile.mkdtemp(prefix="ladder-openclip-")) / f"{name}.json"
    tmp.write_text(json.dumps(model_cfg))
    open_clip.add_model_config(tmp)
    return name


def load(
    weights_uri: str | None, device: torch.device | None = None, model_name: str = DEFAULT_MODEL
) -> ClipScorer:
    import open_clip

    if not weights_uri:
        raise UserError(
            "evaluation.clipWeightsUri is not set but metrics include clip: point it at open_clip "
            "weights baked into the evaluator image, or drop clip from evaluation.metrics"
        )
    path = Path(weights_uri.removeprefix("file://"))
    if not path.is_file():
        raise UserError(
            f"CLIP weights not found at {path} (evaluation.clipWeightsUri): bake the open_clip "
            f"{model_name} weights into the evaluator image at that path (or add an "
            f"{SIDECAR} beside other weights); nothing is downloaded at run time"
        )
    sidecar = path.parent / SIDECAR
    name = _register_sidecar(sidecar) if sidecar.is_file() else model_name
    device = device or default_device()
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=str(path), device=device
        )
    except RuntimeError as err:
        raise UserError(
            f"CLIP weights at {path} do not fit open_clip model {name}: {str(err)[:300]}"
        ) from None
    model.eval()
    return ClipScorer(model, preprocess, open_clip.get_tokenizer(name), device, name)
