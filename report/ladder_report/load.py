"""Read what `ladder run` and the pods wrote into plain data for the report.

Two sources, one reading: a `ladder run` state directory (status.json and configs/), or an
experiment's storage root (`<outputUri>/<name>`, local or gs://, as the cluster's pods and
`ladder run` both lay it out: each size's config.json, results, metrics and samples). Either way
the report trusts the pods' files, read through ladder_api.artifacts: the results of record are
each size's result objects merged by id, training curves come from metrics.jsonl, sample images
from the evaluator's sample files. A cluster experiment is the storage root plus the status the
API server holds (the CLI reads it through the kubeconfig), so local and cluster runs report
identically.
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
    results: list[Result] = field(default_factory=list)  # measured (a finite value each)
    samples: list[SampleSet] = field(default_factory=list)
    failed: list[Result] = field(default_factory=list)  # failed measurements, with their reasons


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


def load(source: str | Path, out_dir: str | Path | None = None,
         status: ScalingExperimentStatus | None = None) -> ReportData:
    """A `ladder run` state directory, or an experiment's storage root (local or gs://). The
    report goes to `out_dir`: by default the directory itself, or ./ladder-reports/<name> for
    a gs:// root. `status`: the status to describe, when the source holds none (a cluster's)."""
    src = str(source)
    if not storage.is_remote(src) and artifacts.read_status(src) is not None:
        return _load_state_dir(Path(src), out_dir)
    runs = artifacts.read_run_configs(src)
    if not runs:
        raise UserError(
            f"{src} is neither a `ladder run` directory (no {artifacts.STATUS_FILE}) nor an experiment's "
            f"storage root (no c<width>/{artifacts.RUN_CONFIG_FILE}): pass the directory `ladder run` "
            "printed, or <storage.outputUri>/<experiment name>"
        )
    name = runs[0].experiment.name
    if out_dir is None:
        out_dir = Path("ladder-reports") / name if storage.is_remote(src) else Path(src)
    return load_runs(name, runs, status, Path(out_dir))


def _load_state_dir(d: Path, out_dir: str | Path | None) -> ReportData:
    status = artifacts.read_status(d)
    runs = load_run_configs(d)
    if not runs:
        raise UserError(f"{d / artifacts.CONFIG_DIR} holds no run configs; was {d} written by `ladder run`?")
    runs = [_relocated(run, d) for run in runs]
    return load_runs(runs[0].experiment.name, runs, status, Path(out_dir or d))


def load_runs(name: str, runs: list[RunConfig], status: ScalingExperimentStatus | None,
              out_dir: Path) -> ReportData:
    """Everything the report shows, from each run's files."""
    merged: dict[str, Result] = {}
    metrics: dict[int, list[dict]] = {}
    samples: list[SampleSet] = []
    for run in runs:
        merged.update((r.id, r) for r in artifacts.read_results(run.paths.results))
        metrics[run.width] = artifacts.read_metrics(run.paths.metrics)
        for uri in storage.list_files(run.paths.samples):
            s = _sample_set(uri, run.width) if uri.endswith(".npz") else None
            if s is not None:
                samples.append(s)
    results = [merged[k] for k in sorted(merged)]
    return ReportData(
        name=name,
        out_dir=out_dir,
        status=status,
        runs=runs,
        metrics=metrics,
        results=[r for r in results if not r.failed],
        samples=samples,
        failed=[r for r in results if r.failed],
    )
