"""`make demo` in miniature (hack/latent_demo.py --mini), through the same steps as the full demo:
IDX files -> image folders -> `ladder prepare train-autoencoder` -> `text-image` with the real
MiniLM weights (pinned hash) -> `reference` -> `ladder run` of two U-Net widths on the latents,
samples decoded by the trained autoencoder, scored by FID, reported.

The images are the first of the real Fashion-MNIST (the Debian package dataset-fashion-mnist)
where it is installed, else scikit-learn's digits written as Fashion-MNIST's IDX files, captioned
with Fashion-MNIST's class names. A handful of steps measures no quality: the test checks the path
and what each step hands the next. FID here is on the digits classifier's features (the full demo
uses Inception, whose ~0.5 s per image on 2 cores does not fit a CI test); the Inception path is
tests/evaluator's."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))
import latent_demo  # noqa: E402


def write_idx(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's IDX layout: 0, 0, dtype 0x08 (uint8), rank; big-endian dims; the bytes."""
    for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
        head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        with gzip.open(folder / f"{split}-{kind}-ubyte.gz", "wb") as f:
            f.write(head + arr.astype(np.uint8).tobytes())


def fashion_subset(folder: Path) -> Path:
    """A few IDX images per split: the real Fashion-MNIST's first ones, or digits standing in."""
    folder.mkdir()
    real = latent_demo.FASHION
    n_train, n_test = latent_demo.MINI["train_images"], latent_demo.MINI["ref_images"]
    if (real / "t10k-images-idx3-ubyte.gz").exists():
        for split, n in (("train", n_train), ("t10k", n_test)):
            write_idx(folder, split, latent_demo._idx(real / f"{split}-images-idx3-ubyte.gz")[:n],
                      latent_demo._idx(real / f"{split}-labels-idx1-ubyte.gz")[:n])
        return folder
    from sklearn.datasets import load_digits

    d = load_digits()
    grey = (d.images * 255 / 16).astype(np.uint8)
    write_idx(folder, "train", grey[:n_train], d.target[:n_train])
    write_idx(folder, "t10k", grey[100:100 + n_test], d.target[100:100 + n_test])
    return folder


def run_demo(tmp: Path, *flags: str) -> tuple[Path, str]:
    """hack/latent_demo.py --mini in tmp (its IDX subset made on the first call): (out, stdout)."""
    source = tmp / "fashion"
    if not source.exists():
        fashion_subset(source)
    out = tmp / "out"
    # XLA's unoptimised backend: compiling (of the autoencoder, trainers, evaluators) is nearly all
    # the miniature costs, and the computation is the same.
    env = {**os.environ, "XLA_FLAGS": "--xla_backend_optimization_level=0"}
    cmd = [sys.executable, str(ROOT / "hack" / "latent_demo.py"), "--mini", "--out", str(out),
           "--fashion", str(source), *flags]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=840, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


def test_latent_demo_miniature(tmp_path):
    """The whole path in one test (one miniature: xdist would run two tests sharing it on two
    workers): `--prepare-only` first, checked as `ladder run` will read it; then the same command
    without it, which resumes in the same folder: the finished preparation is skipped, two U-Nets
    are trained on the latents, samples decoded, FID computed, the report written."""
    out, stdout = run_demo(tmp_path, "--prepare-only")
    assert f"spec: {out / 'latent-mini-data' / 'latent-mini.yaml'}" in stdout
    for step in ("train-autoencoder", "text-image", "reference"):
        assert f"$ ladder prepare {step} " in stdout
    assert "$ ladder run" not in stdout
    check_data(out / "latent-mini-data")
    assert not (out / "latent-mini" / "status.json").exists()  # nothing trained (only the classifier cache)

    out, stdout = run_demo(tmp_path)
    assert "$ ladder prepare" not in stdout  # each finished step is skipped on a re-run
    assert "$ ladder run" in stdout
    assert f"report: {out / 'latent-mini' / 'report.html'}" in stdout
    check_outputs(out)


def check_data(data: Path) -> None:
    """What the preparation handed `ladder run`, read from the files."""
    doc = yaml.safe_load((data / "latent-mini.yaml").read_text())["spec"]
    spec = doc["data"]
    vae = json.loads((data / "vae" / "config.json").read_text())
    assert vae["block_out_channels"] == [8, 16] and vae["latent_channels"] == 4
    assert spec["autoencoder"]["scalingFactor"] == vae["scaling_factor"] != 1.0  # set from the trained one
    manifest = json.loads((data / "train" / "manifest.json").read_text())
    assert manifest["num_examples"] == latent_demo.MINI["train_images"]
    assert manifest["text_encoder"]["hash"] == spec["textEncoder"]["hash"]  # the pinned MiniLM weights
    assert manifest["autoencoder"]["hash"] == spec["autoencoder"]["hash"]
    with np.load(data / "reference" / "prompts.npz") as z:
        assert z["context"].shape == (latent_demo.MINI["ref_images"], 8, 384)
        assert set(z["captions"]) <= {latent_demo.caption(k) for k in range(10)}
    with np.load(data / "reference" / "stats.npz") as z:
        assert np.all(np.isfinite(z["mu"])) and z["sigma"].shape == (len(z["mu"]),) * 2


def check_outputs(out: Path) -> None:
    """What each step handed the next, read from the files."""
    from ladder_api.artifacts import read_results, size_paths
    from ladder_api.status import ScalingExperimentStatus

    run = out / "latent-mini"
    data = out / "latent-mini-data"
    check_data(data)
    doc = yaml.safe_load((data / "latent-mini.yaml").read_text())["spec"]
    spec, ev = doc["data"], doc["evaluation"]

    status = ScalingExperimentStatus.model_validate(json.loads((run / "status.json").read_text()))
    assert status.phase.value == "Succeeded" and sorted(s.width for s in status.sizes) == [8, 16]
    points = {(s, n, g) for s in ev["samplers"] for n in ev["steps"] for g in ev["guidanceScales"]}
    for width in (8, 16):
        results = read_results(size_paths(status.storage_root, width).results)
        assert {(r.sampler, r.steps, r.guidance) for r in results} == points  # every grid point
        fids = [r.value for r in results if r.metric.startswith("fid-")]
        assert len(fids) == len(results) and all(v is not None and math.isfinite(v) for v in fids)
        assert all(r.settings["autoencoderWeightsSha256"] == spec["autoencoder"]["hash"] for r in results)
        assert all(r.settings["textEncoderWeightsSha256"] == spec["textEncoder"]["hash"] for r in results)
    samples = sorted(run.rglob("samples/**/*.npz"))
    assert samples
    with np.load(samples[0]) as z:
        assert z["images"].shape == (ev["numSamples"], 16, 16, 3)  # 8x8x4 latents decoded to 16x16 RGB
    md = (run / "report.md").read_text()
    assert "## FID against sampling cost" in md and "## Samples at equal sampling cost" in md
    assert "c8" in md and "c16" in md
