"""Read a run directory (what `ladder run` and the pods wrote) into plain data for the report.

The report trusts the pods' files: results come from each size's results.json (the same Result
entries status.results holds), merged by id with status.json's, training curves from
metrics.jsonl, sample images from the evaluator's sample files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from ladder_api.errors import UserError
from ladder_api.plan import RunConfig
from ladder_api.status import Result, ScalingExperimentStatus

STATUS_FILE = "status.json"
CONFIG_DIR = "configs"


@dataclass
class SampleSet:
    """Generated images of one size under one sampling setting."""

    width: int
    sampler: str
    steps: int
    guidance: float
    checkpoint_step: int | None
    images: np.ndarray  # [N, H, W, C] float in [0, 1]
    labels: np.ndarray | None  # prompted digit per image, when known
    path: Path


@dataclass
class ReportData:
    name: str
    out_dir: Path
    status: ScalingExperimentStatus | None
    runs: list[RunConfig]
    metrics: dict[int, list[dict]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    samples: list[SampleSet] = field(default_factory=list)


def _read_jsonl(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _read_results(path: Path) -> list[Result]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    out = []
    for item in data if isinstance(data, list) else []:
        try:
            out.append(Result.model_validate(item))
        except ValidationError:
            continue
    return out


def to_unit(images: np.ndarray) -> np.ndarray:
    """Images as floats in [0, 1], whatever range the evaluator stored ([-1, 1], [0, 1], uint8)."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if x.size and x.min() < -1e-3:
        x = (x + 1.0) / 2.0
    return np.clip(x, 0.0, 1.0)


def _sample_set(path: Path, width: int) -> SampleSet | None:
    """One .npz sample file: arrays `images` (N,H,W[,C]) and optionally `labels`, and the setting
    in arrays `sampler`, `steps`, `guidance`, `checkpoint_step` (or a JSON sidecar with those keys)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None
    meta: dict = {}
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text())
        except json.JSONDecodeError:
            meta = {}
    for key in ("sampler", "steps", "guidance", "checkpoint_step"):
        if key not in meta and key in arrays:
            meta[key] = arrays[key].item()
    images = arrays.get("images")
    if images is None or images.ndim not in (3, 4) or not {"sampler", "steps", "guidance"} <= meta.keys():
        return None
    if images.ndim == 3:
        images = images[..., None]
    labels = arrays.get("labels")
    step = meta.get("checkpoint_step")
    return SampleSet(
        width=int(meta.get("width", width)),
        sampler=str(meta["sampler"]),
        steps=int(meta["steps"]),
        guidance=float(meta["guidance"]),
        checkpoint_step=int(step) if step is not None else None,
        images=to_unit(images),
        labels=np.asarray(labels) if labels is not None else None,
        path=path,
    )


def _relocated(run: RunConfig, run_dir: Path) -> RunConfig:
    """The run's paths inside `run_dir` when its size folder is there (`ladder run` lays sizes out
    as <dir>/c<width>/), so a run directory that was moved or copied still reports its own files."""
    root = run_dir / f"c{run.width}"
    if not root.is_dir() or Path(run.paths.root) == root:
        return run
    paths = run.paths.model_copy(update={
        "root": str(root), "checkpoints": str(root / "checkpoints"), "metrics": str(root / "metrics.jsonl"),
        "results": str(root / "results.json"), "samples": str(root / "samples"),
    })
    return run.model_copy(update={"paths": paths})


def load(out_dir: str | Path) -> ReportData:
    d = Path(out_dir)
    status_path = d / STATUS_FILE
    if not status_path.exists():
        raise UserError(f"{d} has no {STATUS_FILE}: pass the run directory `ladder run` wrote")
    try:
        status = ScalingExperimentStatus.model_validate_json(status_path.read_text())
    except ValueError:
        raise UserError(f"{status_path} is not a Ladder status file") from None
    runs = sorted(
        (RunConfig.model_validate_json(p.read_text()) for p in (d / CONFIG_DIR).glob("*.json")),
        key=lambda r: r.index,
    )
    if not runs:
        raise UserError(f"{d / CONFIG_DIR} holds no run configs; was {d} written by `ladder run`?")
    runs = [_relocated(run, d) for run in runs]
    merged: dict[str, Result] = {r.id: r for r in status.results}
    metrics: dict[int, list[dict]] = {}
    samples: list[SampleSet] = []
    for run in runs:
        for r in _read_results(Path(run.paths.results)):
            merged[r.id] = r
        metrics[run.width] = _read_jsonl(Path(run.paths.metrics))
        sdir = Path(run.paths.samples)
        if sdir.is_dir():
            for p in sorted(sdir.rglob("*.npz")):
                s = _sample_set(p, run.width)
                if s is not None:
                    samples.append(s)
    return ReportData(
        name=runs[0].experiment.name,
        out_dir=d,
        status=status,
        runs=runs,
        metrics=metrics,
        results=[merged[k] for k in sorted(merged)],
        samples=samples,
    )
