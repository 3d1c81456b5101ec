"""CLIP score with open_clip: the mean cosine similarity between each generated image's and its
prompt's CLIP embeddings (no x100 and no clipping at 0, the scale of the paper's 0.30-0.31).

Two scorers with one interface: `ClipScorer` runs open_clip in torch (the reference) and
`JaxClipScorer` runs the same towers in JAX (clip_jax) on weights converted from that torch model,
with open_clip's tokenizer and a torch-free copy of its image transform on the host.

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
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ladder_api.errors import UserError
from ladder_evaluator.metrics.fid import default_device
from ladder_evaluator.metrics.host_pool import host_map
from ladder_evaluator.metrics.images import to_uint8_rgb
from ladder_evaluator.metrics.jax_batches import ShardedBatches

DEFAULT_MODEL = "ViT-B-32"
SIDECAR = "open_clip_config.json"


@dataclass
class ClipScorer:
    model: torch.nn.Module
    preprocess: object
    tokenizer: object
    device: torch.device
    model_name: str
    backend: str = "torch"

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


@dataclass
class JaxClipScorer:
    preprocess: Callable[[np.ndarray], np.ndarray]  # uint8 [H, W, 3] -> float32 [S, S, 3]
    tokenizer: object
    image: ShardedBatches  # [B, S, S, 3] -> [B, D]
    text: ShardedBatches  # token ids [B, L] -> [B, D]
    model_name: str
    backend: str = "jax"

    def inputs(self, images, captions) -> tuple[np.ndarray, np.ndarray]:
        """The host half of `embeddings`: preprocessed pixels [B, S, S, 3] (host threads) and token
        ids [B, L] int32 (separate so bench/sampling.py can time host and towers apart)."""
        u8 = to_uint8_rgb(images)
        if len(u8) != len(captions):
            raise ValueError(f"{len(u8)} images but {len(captions)} captions")
        tokens = self.tokenizer(list(captions)).numpy().astype(np.int32)
        return np.stack(host_map(self.preprocess, u8)), tokens

    def embeddings(self, images, captions) -> tuple[np.ndarray, np.ndarray]:
        """Image and caption embeddings (not normalised) of model-space images."""
        pixels, tokens = self.inputs(images, captions)
        return self.image(pixels), self.text(tokens)

    def score(self, images, captions, batch_size: int = 64) -> float:
        """Mean cosine similarity of image and caption embeddings over all pairs given."""
        return float(self.similarities(images, captions, batch_size).mean())

    def similarities(self, images, captions, batch_size: int = 64) -> np.ndarray:
        """Cosine similarity of each image with its caption (the score's interval needs them)."""
        sims = []
        for s in range(0, len(images), batch_size):
            img, txt = self.embeddings(images[s:s + batch_size], captions[s:s + batch_size])
            img = img / np.linalg.norm(img, axis=-1, keepdims=True)
            txt = txt / np.linalg.norm(txt, axis=-1, keepdims=True)
            sims.append(np.sum(img * txt, axis=-1))
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


def load_jax(weights_uri: str | None, batch_size: int = 64, mesh=None,
             model_name: str = DEFAULT_MODEL) -> JaxClipScorer:
    """The JAX scorer for the weights `load` reads; clip_jax.NotPortedError if the port cannot
    express the model or its image transform exactly."""
    from ladder_evaluator.metrics import clip_convert, clip_jax, clip_preprocess

    ref = load(weights_uri, torch.device("cpu"), model_name)
    cfg, params = clip_convert.convert(ref.model)
    pre = clip_preprocess.from_open_clip(ref.preprocess)
    image = ShardedBatches(partial(clip_jax.encode_image, cfg), params["visual"], batch_size, mesh)
    text = ShardedBatches(partial(clip_jax.encode_text, cfg), params["text"], batch_size, mesh)
    return JaxClipScorer(pre, ref.tokenizer, image, text, ref.model_name)
