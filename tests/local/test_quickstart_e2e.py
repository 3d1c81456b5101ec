"""A smaller quickstart, end to end through the real CLI and the real trainer and evaluator:
train, evaluate, report; then check status.json against the CRD's status schema, the report's
contents, `ladder status`, and that running again does nothing twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from ladder_api.artifacts import read_results, size_paths
from ladder_api.status import ScalingExperimentStatus
from tests.local.test_status_build import crd_status_schema

ROOT = Path(__file__).resolve().parents[2]
LADDER = [sys.executable, "-m", "ladder_cli.main"]

pytestmark = pytest.mark.slow


def small_quickstart(tmp_path: Path) -> Path:
    """examples/quickstart.yaml with fewer sizes, steps and samples (same model family)."""
    doc = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    spec = doc["spec"]
    doc["metadata"]["name"] = "quickstart-small"
    spec["ladder"]["widths"] = [8, 16]
    spec["training"].update(steps=30, globalBatch=32, logEverySteps=10)
    spec["training"]["checkpoint"] = {"intervalSteps": 15, "keep": 2}
    spec["training"]["lrSchedule"] = {"kind": "cosine", "warmupSteps": 5}
    spec["evaluation"].update(samplers=["dpmpp_2m"], steps=[2, 4], guidanceScales=[1.0, 3.0], numSamples=32,
                              batchSize=32)
    path = tmp_path / "quickstart-small.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def ladder(*args, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([*LADDER, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_small_quickstart_end_to_end(tmp_path):
    spec = small_quickstart(tmp_path)
    out = tmp_path / "run"
    proc = ladder("run", str(spec), "-o", str(out), "--plain")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"report: {out / 'report.html'}" in proc.stdout

    wire = json.loads((out / "status.json").read_text())
    jsonschema.validate(wire, crd_status_schema())
    status = ScalingExperimentStatus.model_validate(wire)
    widths = [s.width for s in status.sizes]
    assert status.phase.value == "Succeeded" and status.summary.progress == f"{len(widths)}/{len(widths)}"
    assert all(s.checkpoint_step == 30 and s.step == 30 for s in status.sizes)
    results = [r for w in widths for r in read_results(size_paths(status.storage_root, w).results)]
    assert {r.metric for r in results} == {"fid-digits-classifier", "adherence"}
    per_size = 1 * 2 * 2 * 2  # samplers x steps x guidance x metrics
    assert len(results) == len(widths) * per_size
    counts = [(s.measurements.recorded, s.measurements.expected) for s in status.sizes]
    assert counts == [(per_size, per_size)] * len(widths)
    assert status.summary.measured == f"{len(results)}/{len(results)}"
    assert status.summary.fid_metric == "fid-digits-classifier" and status.summary.frontier
    # every result of record has its interval and its replicates (the status has none of them)
    assert all(r.ci_low <= r.value <= r.ci_high and r.replicates for r in results)
    assert status.summary.confidence == 0.95
    assert all(p.win_probability is not None and p.fid_low is not None for p in status.summary.frontier)

    md = (out / "report.md").read_text()
    for heading in ("## The ladder", "## FID against sampling cost", "## The frontier", "## Guidance sweeps",
                    "## Samples at equal sampling cost", "## What the metrics measure", "## Exact settings"):
        assert heading in md
    assert "not comparable to Inception FID" in md.replace("Not", "not")
    assert f"The largest size (c{max(widths)}) reaches a prompt adherence of" in md
    assert "What this run's results say, generated from them: At budget" in md  # the frontier in words
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4

    shown = ladder("status", str(out))
    assert shown.returncode == 0 and "Succeeded" in shown.stdout and "Frontier" in shown.stdout
    assert "DECISION" in shown.stdout and ("wins (p=" in shown.stdout or "tie with" in shown.stdout)

    again = ladder("run", str(spec), "-o", str(out), "--plain")
    assert again.returncode == 0
    for w in widths:
        for log in ("train.log", "evaluate.log"):
            assert (out / f"c{w}" / "logs" / log).read_text().count("=== ladder run") == 1
