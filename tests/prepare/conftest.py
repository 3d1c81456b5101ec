"""Real tiny images (scikit-learn's handwritten digits, upscaled and coloured, as PNG and JPEG)
in the layouts users have: WebDataset tars, an image folder with a captions JSONL, COCO's
captions JSON. Plus a small AutoencoderKL in diffusers' layout and a spec that uses both."""

from __future__ import annotations

import copy
import io
import json
import tarfile

import numpy as np
import pytest
import yaml

from tests.trainer.conftest import QUICKSTART_LIKE

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
AE = dict(
    block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4, latent_channels=4, scaling_factor=0.5
)


def digit_images(n: int, offset: int = 0):
    """(PNG/JPEG bytes, caption) of n digits, 24x20 (not square: the crop matters), RGB."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    out = []
    for i in range(offset, offset + n):
        grey = (d.images[i] * 255 / 16).astype(np.uint8)
        rgb = np.stack([grey, 255 - grey, np.full_like(grey, 40 * (i % 6))], -1)
        img = Image.fromarray(rgb).resize((24, 20), Image.NEAREST)
        buf = io.BytesIO()
        img.save(buf, format="PNG" if i % 2 else "JPEG", quality=95)
        out.append(
            (buf.getvalue(), "jpg" if i % 2 == 0 else "png", f"a handwritten digit {WORDS[d.target[i]]}")
        )
    return out


class KilledError(Exception):
    """The worker dies (preempted, OOM-killed) in the middle of a part."""


class DiesInPart:
    """A real source, except that part `k` dies after `after` items (a killed worker)."""

    def __init__(self, inner, k: int, after: int):
        self.inner, self.k, self.after = inner, k, after

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def items(self, k):
        for n, item in enumerate(self.inner.items(k)):
            if k == self.k and n == self.after:
                raise KilledError
            yield item


def write_tar(path, samples):
    """samples: (key, {ext: bytes}) in order."""
    with tarfile.open(path, "w") as tar:
        for key, files in samples:
            for ext, data in files.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def webdataset_shards(folder, counts=(6, 5), bad=True):
    """Tar shards of digits; with `bad`, shard 0 also holds an undecodable image and an image
    without a caption (json without one), shard 1 a caption without an image."""
    folder.mkdir(parents=True, exist_ok=True)
    offset = 0
    for s, n in enumerate(counts):
        samples = []
        for j, (data, ext, caption) in enumerate(digit_images(n, offset)):
            meta = {"caption": caption} if j % 2 else None
            files = {
                ext: data,
                **({"json": json.dumps(meta).encode()} if meta else {"txt": caption.encode()}),
            }
            samples.append((f"{s:05d}{j:04d}", files))
        if bad and s == 0:
            samples.insert(2, ("corrupt", {"jpg": b"\xff\xd8 not really a jpeg", "txt": b"a broken image"}))
            samples.append(("nocaption", {"png": digit_images(1, 50)[0][0], "json": b'{"url": "x"}'}))
        if bad and s == 1:
            samples.append(("noimage", {"txt": b"a caption alone"}))
        write_tar(folder / f"{s:05d}.tar", samples)
        offset += n
    return folder


def image_folder(folder, n=7):
    """Images plus captions.jsonl; one listed file is missing, one caption empty."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (data, ext, caption) in enumerate(digit_images(n)):
        (folder / "img" / f"d{i}.{ext}").write_bytes(data)
        lines.append({"file": f"d{i}.{ext}", "caption": "" if i == 3 else caption})
    lines.append({"file": "gone.png", "caption": "a missing file"})
    (folder / "captions.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return folder / "img", folder / "captions.jsonl"


def coco(folder, n=5):
    """COCO layout: captions_val2014.json with 1-3 captions per image, one image with none."""
    (folder / "val2014").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i, (data, ext, caption) in enumerate(digit_images(n, 20)):
        name = f"COCO_val2014_{i:012d}.{ext}"
        (folder / "val2014" / name).write_bytes(data)
        images.append({"id": 100 + i, "file_name": name, "width": 24, "height": 20})
        for c in range(0 if i == 4 else i % 3 + 1):
            anns.append({"id": 1000 + 10 * i + c, "image_id": 100 + i, "caption": f"take {c}: {caption}"})
    (folder / "captions_val2014.json").write_text(json.dumps({"images": images, "annotations": anns}))
    return folder / "captions_val2014.json", folder / "val2014"


@pytest.fixture(scope="session")
def small_autoencoder(tmp_path_factory):
    """A random small AutoencoderKL saved as diffusers saves one (f = 2, 4 latent channels)."""
    from ladder_trainer.models import autoencoder as ae
    from ladder_trainer.weights import save_autoencoder

    path = tmp_path_factory.mktemp("weights") / "vae"
    save_autoencoder(
        str(path), ae.AutoencoderConfig(**AE), ae.init_params(ae.AutoencoderConfig(**AE), seed=3)
    )
    return path


def spec_file(path, *, autoencoder, text_encoder=None, ladder=None, data=None) -> str:
    """The trainer tests' tiny experiment (tests/trainer/conftest.py) with an sd-vae's 4 latent
    channels, its data prepared beside `path` and a short training; written to path."""
    doc = copy.deepcopy(QUICKSTART_LIKE)
    doc["metadata"]["name"] = "prep"
    spec = doc["spec"]
    spec["ladder"].update({"latentChannels": 4, **(ladder or {})})
    spec["data"] = {
        "trainUri": str(path.parent / "train"),
        "autoencoder": autoencoder,
        "textEncoder": text_encoder or {"name": "builtin-digits"},
        **(data or {}),
    }
    spec["training"] = {"steps": 4, "globalBatch": 4, "lrSchedule": {"warmupSteps": 0}}
    del spec["storage"]  # the default: no test here writes a run
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def vae_spec(tmp_path, small_autoencoder):
    return spec_file(
        tmp_path / "exp.yaml",
        autoencoder={"kind": "sd-vae", "weightsUri": str(small_autoencoder), "scalingFactor": 0.5},
    )


def pytest_configure(config):
    """JAX's persistent compilation cache, shared with the trainer's tests: the autoencoder's
    programs compile once per machine, not once per test run."""
    import os
    import tempfile

    import jax

    jax.config.update(
        "jax_compilation_cache_dir",
        os.path.join(tempfile.gettempdir(), f"ladder-test-jax-cache-{os.getuid()}"),
    )
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
