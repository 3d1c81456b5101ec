"""CLIP score in JAX against open_clip in torch at random weights: the host preprocessing equals
open_clip's transform exactly, image and text embeddings agree to 1e-4 relative, CLIP scores to
1e-4; models the port cannot express fall back to torch (or fail clearly when JAX is asked for)."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from ladder_api.errors import UserError
from ladder_evaluator.metrics import backends, clip_preprocess, clip_score
from ladder_evaluator.metrics.images import to_uint8_rgb
from ladder_trainer.data import digits
from tests.evaluator.standins import TINY_CLIP, tiny_clip

# Every option of the port switched away from the default: QuickGELU, average pooling with the
# final LayerNorm after pooling, LayerScale, no pre-LayerNorm, a biased linear text projection.
VARIANT = {
    "embed_dim": 24, "quick_gelu": True,
    "vision_cfg": {"image_size": 48, "layers": 2, "width": 64, "head_width": 16, "patch_size": 12,
                   "pool_type": "avg", "final_ln_after_pool": True, "ls_init_value": 0.5, "no_ln_pre": True},
    "text_cfg": {"context_length": 12, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2,
                 "ls_init_value": 0.5, "proj_bias": True},
}
CAPTIONS = ["a photo of a cat", "the digit three", "zero", "a handwritten 7, slanted", "x",
            "a rather long caption that the tokenizer has to cut off at the context length"]


def _images(n: int = 6, shape=(37, 23)) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (n, *shape, 3)).astype(np.float32)


@pytest.mark.parametrize("resize_mode,interpolation", [("shortest", "bicubic"), ("shortest", "bilinear"),
                                                       ("squash", "bicubic")])
@pytest.mark.parametrize("shape", [(8, 8), (37, 23), (23, 61), (64, 64)])
def test_host_preprocessing_equals_open_clips_transform(resize_mode, interpolation, shape):
    transform = open_clip.image_transform(32, is_train=False, resize_mode=resize_mode,
                                          interpolation=interpolation)
    ours = clip_preprocess.from_open_clip(transform)
    for img in to_uint8_rgb(_images(3, shape)):
        ref = transform(Image.fromarray(img)).numpy().transpose(1, 2, 0)
        np.testing.assert_array_equal(ours(img), ref)


def test_longest_resize_mode_is_not_ported():
    from ladder_evaluator.metrics.clip_jax import NotPortedError

    with pytest.raises(NotPortedError, match="ResizeKeepRatio"):
        clip_preprocess.from_open_clip(open_clip.image_transform(32, is_train=False, resize_mode="longest"))


@pytest.mark.parametrize("model_cfg", [TINY_CLIP, VARIANT], ids=["default", "variant"])
def test_jax_embeddings_and_score_equal_open_clip(tmp_path, model_cfg):
    _, weights = tiny_clip(tmp_path, model_cfg=model_cfg)
    ref = clip_score.load(str(weights), torch.device("cpu"))
    ours = clip_score.load_jax(str(weights), batch_size=4)
    images = _images()
    with torch.no_grad():
        pix = torch.stack([ref.preprocess(Image.fromarray(im)) for im in to_uint8_rgb(images)])
        ref_img = ref.model.encode_image(pix).numpy()
        ref_txt = ref.model.encode_text(ref.tokenizer(CAPTIONS)).numpy()
    img, txt = ours.embeddings(images, CAPTIONS)
    for a, b in ((img, ref_img), (txt, ref_txt)):
        assert a.shape == b.shape
        assert np.linalg.norm(a - b) <= 1e-4 * np.linalg.norm(b)
    s_ref, s_ours = ref.score(images, CAPTIONS, batch_size=4), ours.score(images, CAPTIONS, batch_size=4)
    assert s_ours == pytest.approx(s_ref, rel=1e-4)
    np.testing.assert_allclose(ours.similarities(images, CAPTIONS, 4), ref.similarities(images, CAPTIONS, 4),
                               rtol=1e-4, atol=1e-5)  # per pair: what the score's interval resamples
    assert ours.score(images, CAPTIONS[::-1]) != pytest.approx(s_ours, rel=1e-3)  # captions matter


def test_default_backend_is_jax_and_unported_models_fall_back_to_torch(tmp_path):
    test = digits.load("test")
    _, weights = tiny_clip(tmp_path)
    scorer = backends.clip_scorer(str(weights), batch_size=4)
    assert scorer.backend == "jax"
    assert backends.clip_scorer(str(weights), "torch").backend == "torch"
    assert scorer.score(test.images[:5], test.captions[:5]) == pytest.approx(
        backends.clip_scorer(str(weights), "torch").score(test.images[:5], test.captions[:5]), rel=1e-4)
    custom = {**TINY_CLIP, "vision_cfg": {**TINY_CLIP["vision_cfg"], "qk_norm": True}}
    (tmp_path / "qk").mkdir()
    _, other = tiny_clip(tmp_path / "qk", model_cfg=custom)
    assert backends.clip_scorer(str(other)).backend == "torch"
    with pytest.raises(UserError, match=r"clipWeightsUri.*JAX backend cannot run.*attention block"):
        backends.clip_scorer(str(other), "jax")
