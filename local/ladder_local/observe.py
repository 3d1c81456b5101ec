"""Read what the trainer and evaluator subprocesses leave on disk: checkpoint steps, metrics
lines, results. The files are the only channel between the runner and the pods' code (the
operator package imports no JAX or torch), exactly as in the cluster, where they are objects in a
bucket and the status."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ladder_api.plan import RunConfig
from ladder_api.status import Result


def checkpoint_steps(directory: str | Path) -> list[int]:
    """Steps of the complete checkpoints under an orbax CheckpointManager directory.

    Orbax writes a step into a temporary folder (`<step>.orbax-checkpoint-tmp-*`) and renames it
    to `<step>` once complete, so a purely numeric name is a finished checkpoint.
    """
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(int(p.name) for p in d.iterdir() if p.is_dir() and p.name.isdigit())


def read_results(path: str | Path) -> list[Result]:
    """Results the evaluator wrote (a JSON list of Result wire dicts); [] when none yet.

    The evaluator replaces the file atomically, so a file that does not parse is not expected;
    if one appears anyway it is treated as empty rather than stopping the run, and the evaluator's
    own skip logic remains the authority on what is recorded.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return []
    if not isinstance(data, list):
        return []
    out = []
    for item in data:
        try:
            out.append(Result.model_validate(item))
        except ValidationError:
            continue
    return out


class MetricsTail:
    """Follows a JSON-lines metrics file, returning only lines completed since the last poll."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self.last: dict | None = None

    def poll(self) -> list[dict]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:  # replaced by a fresh file
            self.offset = 0
        if size == self.offset:
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read(size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        records = []
        for line in chunk[: end + 1].splitlines():
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(rec, dict):
                records.append(rec)
        if records:
            self.last = records[-1]
        return records


@dataclass
class SizeObservation:
    """Everything the status of one size is built from, as read from disk."""

    width: int
    checkpoint_steps: list[int] = field(default_factory=list)
    last_metrics: dict | None = None
    results: list[Result] = field(default_factory=list)


class SizeWatcher:
    """Keeps one size's observation fresh; cheap to poll (metrics are read incrementally)."""

    def __init__(self, run: RunConfig):
        self.run = run
        self.metrics = MetricsTail(run.paths.metrics)
        self._results_mtime: float | None = None
        self._results: list[Result] = []

    def observe(self) -> SizeObservation:
        self.metrics.poll()
        path = Path(self.run.paths.results)
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != self._results_mtime:
            self._results_mtime = mtime
            self._results = read_results(path) if mtime is not None else []
        return SizeObservation(
            width=self.run.width,
            checkpoint_steps=checkpoint_steps(self.run.paths.checkpoints),
            last_metrics=self.metrics.last,
            results=list(self._results),
        )


def write_json_atomic(path: str | Path, data) -> None:
    """Write-then-rename, so a reader (`ladder status`, a report) never sees half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=False)
            f.write("\n")
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
