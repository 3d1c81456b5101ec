"""Measure which results of a `ladder run` are bit-identical from run to run, and how they differ
between 1 and 8 (fake CPU) devices. Prints a JSON report; docs/determinism.md states its findings.

    python hack/determinism.py [WORKDIR]

Three runs of one tiny experiment (one width, quickstart layout, digits, 20 training steps,
DDIM and DDPM at 2 and 4 steps, guidance 1 and 3; FID on digits-classifier features, adherence,
and a CLIP score from a tiny random open_clip model): A and B on 1 device in separate processes,
C with XLA_FLAGS=--xla_force_host_platform_device_count=8 (training sharded over 8 devices,
sampling over a mesh of 8). Compared: the training metrics (loss per logged step), the final
checkpoint's parameters, the sampled images, and every result (value and bootstrap replicates).
Minutes of CPU; not a test (tests/trainer/test_determinism.py and tests/evaluator/test_determinism.py
check the same-machine statements; the sharding tests bound the 1 vs 8 device differences).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

SPEC = {
    "apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": "det"},
    "spec": {
        "ladder": {"widths": [16], "contextDim": 32, "contextTokens": 4, "channelMult": [1, 2],
                   "numResBlocks": 1, "attentionLevels": [1], "numHeads": 4, "normGroups": 8,
                   "latentChannels": 1, "latentSize": 8},
        "data": {"trainUri": "builtin:digits", "autoencoder": {"kind": "identity"},
                 "textEncoder": {"name": "builtin-digits"},
                 "referenceSet": {"name": "digits-test", "uri": "builtin:digits-test"}},
        "training": {"steps": 20, "globalBatch": 16, "learningRate": 0.002,
                     "lrSchedule": {"warmupSteps": 2}, "computeDtype": "float32",
                     "checkpoint": {"intervalSteps": 20, "keep": 1}, "logEverySteps": 1},
        "evaluation": {"samplers": ["ddim", "ddpm"], "steps": [2, 4], "guidanceScales": [1.0, 3.0],
                       "numSamples": 64, "batchSize": 32, "metrics": ["fid", "adherence", "clip"],
                       "fidFeatures": "digits-classifier"},
    },
}


def _run(spec_path: Path, out: Path, devices: int) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    cmd = [sys.executable, "-m", "ladder_cli", "run", str(spec_path), "-o", str(out), "--plain",
           "--no-report"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _losses(out: Path) -> list[float]:
    lines = (out / "c16" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)["loss"] for x in lines if "loss" in json.loads(x)]


def _params(out: Path) -> dict[str, np.ndarray]:
    import jax  # noqa: PLC0415 (JAX only when measuring)

    from ladder_api import artifacts
    from ladder_evaluator.model import load_params

    (run,) = artifacts.read_run_configs(str(out))
    tree = load_params(run, run.paths.checkpoints, run.training.steps)
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(tree)}


def _images(out: Path) -> dict[str, np.ndarray]:
    images = {}
    for path in sorted((out / "c16" / "samples").rglob("*.npz")):
        with np.load(path) as z:
            images[path.name] = z["images"]
    return images


def _results(out: Path) -> dict[str, dict]:
    from ladder_api import artifacts

    return {r.id: {"value": r.value, "replicates": r.replicates}
            for r in artifacts.read_results(str(out / "c16" / "results"))}


def _compare_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict:
    assert a.keys() == b.keys(), (sorted(a)[:5], sorted(b)[:5])
    worst = 0.0
    identical = True
    for k in a:
        x, y = np.asarray(a[k], np.float64), np.asarray(b[k], np.float64)
        identical = identical and np.array_equal(a[k], b[k])
        worst = max(worst, float(np.max(np.abs(x - y))) if x.size else 0.0)
    return {"bit_identical": bool(identical), "max_abs_difference": worst, "arrays": len(a)}


def _compare_results(a: dict, b: dict) -> dict:
    """Per metric (the result id's last part), whether every value is bit-identical and by how much
    the values differ; the bootstrap replicates likewise."""
    by_metric: dict[str, list[tuple[float, float]]] = {}
    for key, r in a.items():
        metric = key.split("-g", 1)[1].split("-", 1)[1]
        by_metric.setdefault(metric, []).append((r["value"], b[key]["value"]))
    out = {}
    for metric, pairs in sorted(by_metric.items()):
        out[metric] = {"bit_identical": all(x == y for x, y in pairs),
                       "max_abs_difference": max(abs(x - y) for x, y in pairs),
                       "max_relative_difference": max(abs(x - y) / max(abs(x), 1e-12) for x, y in pairs),
                       "results": len(pairs)}
    reps = [(a[k]["replicates"], b[k]["replicates"]) for k in a if a[k]["replicates"]]
    worst = max((abs(p - q) for x, y in reps for p, q in zip(x, y, strict=True)), default=0.0)
    out["replicates"] = {"bit_identical": all(x == y for x, y in reps), "max_abs_difference": worst,
                         "results": len(reps)}
    return out


def compare(x: Path, y: Path) -> dict:
    lx, ly = _losses(x), _losses(y)
    return {
        "loss": {"bit_identical": lx == ly, "steps": len(lx),
                 "max_abs_difference": max(abs(p - q) for p, q in zip(lx, ly, strict=True))},
        "params": _compare_arrays(_params(x), _params(y)),
        "images": _compare_arrays(_images(x), _images(y)),
        "results": _compare_results(_results(x), _results(y)),
    }


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="ladder-det-"))
    work.mkdir(parents=True, exist_ok=True)
    clip_dir = work / "clip"
    clip_dir.mkdir(exist_ok=True)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.evaluator.standins import tiny_clip

    _, weights = tiny_clip(clip_dir)
    spec = json.loads(json.dumps(SPEC))
    spec["spec"]["evaluation"]["clipWeightsUri"] = str(weights)
    spec_path = work / "det.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    for name, devices in (("a", 1), ("b", 1), ("c", 8)):
        if not (work / name / "c16" / "results").exists():
            _run(spec_path, work / name, devices)
    report = {"same machine, two runs (1 device)": compare(work / "a", work / "b"),
              "1 vs 8 devices": compare(work / "a", work / "c")}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
