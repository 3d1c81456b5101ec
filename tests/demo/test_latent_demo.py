"""`make demo` in miniature (hack/latent_demo.py --mini), through the same steps as the full demo:
IDX files -> image folders -> `ladder prepare train-autoencoder` -> `text-image` with the real
MiniLM weights (pinned hash) -> `reference` -> `ladder run` of two U-Net widths on the latents,
samples decoded by the trained autoencoder, scored, reported.

The images are scikit-learn's digits written as Fashion-MNIST's IDX files (the Debian package
need not be installed where tests run); their captions are Fashion-MNIST's class names, so
nothing here measures quality: the test checks the path and what each step hands the next."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def write_idx(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST's IDX layout: 0, 0, dtype 0x08 (uint8), rank; big-endian dims; the bytes."""
    for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
        head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        with gzip.open(folder / f"{split}-{kind}-ubyte.gz", "wb") as f:
            f.write(head + arr.astype(np.uint8).tobytes())


def test_latent_demo_miniature(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    source = tmp_path / "fashion"
    source.mkdir()
    grey = (d.images * 255 / 16).astype(np.uint8)
    write_idx(source, "train", grey[:96], d.target[:96])
    write_idx(source, "t10k", grey[100:148], d.target[100:148])

    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "hack" / "latent_demo.py"), "--mini", "--out", str(out),
                           "--fashion", str(source)], capture_output=True, text=True, timeout=840, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"report: {out / 'latent-mini' / 'report.html'}" in proc.stdout
    check_outputs(out)


def check_outputs(out: Path) -> None:
    """What each step handed the next, read from the files."""
    from ladder_api.artifacts import read_results, size_paths
    from ladder_api.status import ScalingExperimentStatus

    run = out / "latent-mini"

    data = out / "latent-mini-data"
    spec = yaml.safe_load((data / "latent-mini.yaml").read_text())["spec"]["data"]
    vae = json.loads((data / "vae" / "config.json").read_text())
    assert spec["autoencoder"]["scalingFactor"] == vae["scaling_factor"] != 1.0  # set from the trained one
    manifest = json.loads((data / "train" / "manifest.json").read_text())
    assert manifest["num_examples"] == 64
    assert manifest["text_encoder"]["hash"] == spec["textEncoder"]["hash"]  # the pinned MiniLM weights
    assert manifest["autoencoder"]["hash"] == spec["autoencoder"]["hash"]

    status = ScalingExperimentStatus.model_validate(json.loads((run / "status.json").read_text()))
    assert status.phase.value == "Succeeded" and sorted(s.width for s in status.sizes) == [8, 16]
    results = [r for w in (8, 16) for r in read_results(size_paths(status.storage_root, w).results)]
    assert len(results) == 2 and status.summary.measured == "2/2"  # widths x one grid point x one metric
    assert all(r.settings["autoencoderWeightsSha256"] == spec["autoencoder"]["hash"] for r in results)
    assert all(r.settings["textEncoderWeightsSha256"] == spec["textEncoder"]["hash"] for r in results)
    samples = sorted(run.rglob("samples/**/*.npz"))
    assert samples
    with np.load(samples[0]) as z:
        assert z["images"].shape == (16, 16, 16, 3)  # 8x8x4 latents decoded to 16x16 RGB
    md = (run / "report.md").read_text()
    assert "## FID against sampling cost" in md and "## Samples at equal sampling cost" in md
