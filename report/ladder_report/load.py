"""Read a run directory (what `ladder run` and the pods wrote) into plain data for the report.

The report trusts the pods' files, read through ladder_api.artifacts wherever the outputs are
(local or gs://): results are each size's results merged by id with status.json's, training
curves come from metrics.jsonl, sample images from the evaluator's sample files.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ladder_api import artifacts, storage
from ladder_api.errors import UserError
from ladder_api.loading import load_run_configs
from ladder_api.plan import RunConfig
from ladder_api.status import Result, ScalingExperimentStatus


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
    path: str | Path  # the sample file (a local path or a gs:// URI)


@dataclass
class ReportData:
    name: str
    out_dir: Path
    status: ScalingExperimentStatus | None
    runs: list[RunConfig]
    metrics: dict[int, list[dict]] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    samples: list[SampleSet] = field(default_factory=list)


def to_unit(images: np.ndarray) -> np.ndarray:
    """Images as floats in [0, 1], whatever range the evaluator stored ([-1, 1], [0, 1], uint8)."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if x.size and x.min() < -1e-3:
        x = (x + 1.0) / 2.0
    return np.clip(x, 0.0, 1.0)


def _sample_set(uri: str, width: int) -> SampleSet | None:
    """One .npz sample file: arrays `images` (N,H,W[,C]) and optionally `labels`, and the setting
    in arrays `sampler`, `steps`, `guidance`, `checkpoint_step` (or a JSON sidecar with those keys)."""
    try:
        with np.load(io.BytesIO(storage.read_bytes(uri)), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None
    try:
        meta = json.loads(storage.read_bytes(uri.removesuffix(".npz") + ".json"))
    except (FileNotFoundError, json.JSONDecodeError):
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
        path=uri,
    )


def _relocated(run: RunConfig, run_dir: Path) -> RunConfig:
    """The run's paths inside `run_dir` when its size folder is there (`ladder run` lays sizes out
    as <dir>/c<width>/), so a run directory that was moved or copied still reports its own files.
    Outputs on gs:// stay where they are: the directory holds only the runner's state then."""
    root = run_dir / artifacts.size_dir(run.width)
    if storage.is_remote(run.paths.root) or not root.is_dir() or Path(run.paths.root) == root:
        return run
    return run.model_copy(update={"paths": artifacts.RunPaths.under(str(root))})


def load(out_dir: str | Path) -> ReportData:
    d = Path(out_dir)
    status = artifacts.read_status(d)
    if status is None:
        raise UserError(f"{d} has no {artifacts.STATUS_FILE}: pass the run directory `ladder run` wrote")
    runs = load_run_configs(d)
    if not runs:
        raise UserError(f"{d / artifacts.CONFIG_DIR} holds no run configs; was {d} written by `ladder run`?")
    runs = [_relocated(run, d) for run in runs]
    merged: dict[str, Result] = {r.id: r for r in status.results}
    metrics: dict[int, list[dict]] = {}
    samples: list[SampleSet] = []
    for run in runs:
        merged.update((r.id, r) for r in artifacts.read_results(run.paths.results))
        metrics[run.width] = artifacts.read_metrics(run.paths.metrics)
        for uri in storage.list_files(run.paths.samples):
            s = _sample_set(uri, run.width) if uri.endswith(".npz") else None
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
