"""The files of a run: their names, where they go, and the one reader and writer of each.

An experiment's outputs live under one root (`<storage.outputUri>/<name>`, or where `ladder run`
puts them), one folder per size:

    c<width>/config.json           the RunConfig the size's files are written under (written by
                                   the operator and by `ladder run`), so the storage root alone
                                   is enough for `ladder report`
    c<width>/checkpoints/<step>/   orbax, one folder per saved step
    c<width>/metrics.jsonl         training metrics, one JSON object per line
    c<width>/results/              evaluation results: one write-once JSON object per evaluator
                                   write, <writer id>-<seq>.json, merged by result id
    c<width>/samples/step-<s>/     sample images per grid point (.npz)

`ladder run` keeps its own state in a local directory (the outputs' root when it is local):
status.json (the custom resource's status shape), configs/<run name>.json (each RunConfig as
the subprocesses read it) and c<width>/logs/<task>.log.

Every file goes through ladder_api.storage, so each reader and writer works on local paths and
gs:// alike. Results are written so that concurrent writers never touch the same object and
never read-modify-write: each write is a new object, named so that sorting the names orders the
writes (a later writer's entry for an id wins), which is also what lets a poller read each
object once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pydantic import Field, ValidationError

from ladder_api import storage
from ladder_api.base import Model
from ladder_api.errors import UserError
from ladder_api.status import Result, ScalingExperimentStatus

if TYPE_CHECKING:
    from ladder_api.plan import RunConfig

STATUS_FILE = "status.json"
RUN_CONFIG_FILE = "config.json"
CONFIG_DIR = "configs"
LOGS_DIR = "logs"
CHECKPOINTS_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
RESULTS_DIR = "results"
SAMPLES_DIR = "samples"
LEGACY_RESULTS_FILE = "results.json"  # one rewritten list, before results/ (read, never written)
COMMIT_MARKER = "commit_success.txt"  # what orbax writes last into a step on an object store
# A prepared training set (data.trainUri) exists once `ladder prepare` wrote this, last.
DATA_MANIFEST = "manifest.json"
METRICS_MIN_INTERVAL_S = 1.0  # GCS takes about one write per second to the same object
READ_WORKERS = 16  # result objects fetched at once from an object store (each read is a round trip)
SIZE_DIR = re.compile(r"^c([0-9]+)$")


# --- layout --------------------------------------------------------------------------------------


def data_prepared(train_uri: str) -> bool:
    """Whether data.trainUri holds a finished preparation: both backends skip preparing then."""
    return storage.exists(storage.join(train_uri, DATA_MANIFEST))


def size_dir(width: int) -> str:
    return f"c{width}"


class RunPaths(Model):
    root: str = Field(..., description="<outputUri>/<experiment>/c<width>")
    checkpoints: str
    metrics: str = Field(..., description="JSON-lines training metrics.")
    results: str = Field(
        ..., description="Evaluation results: a folder (prefix) of write-once JSON objects, each a list "
        "of Result entries (ladder_api.status.Result), merged by id (ladder_api.artifacts)."
    )
    samples: str

    @classmethod
    def under(cls, root: str) -> RunPaths:
        """Where one size's files go, below its folder."""
        return cls(
            root=root,
            checkpoints=storage.join(root, CHECKPOINTS_DIR),
            metrics=storage.join(root, METRICS_FILE),
            results=storage.join(root, RESULTS_DIR),
            samples=storage.join(root, SAMPLES_DIR),
        )


def size_paths(experiment_root: str, width: int) -> RunPaths:
    return RunPaths.under(storage.join(experiment_root, size_dir(width)))


def run_config_uri(size_root: str) -> str:
    return storage.join(size_root, RUN_CONFIG_FILE)


def write_run_config(run: RunConfig) -> None:
    """The run's config beside its files (replaced whole: the same bytes for the same spec)."""
    storage.write_text(run_config_uri(run.paths.root), run.config_json())


def read_run_configs(experiment_root: str) -> list[RunConfig]:
    """The RunConfigs recorded under an experiment's storage root (one per size folder that has
    one), by width; their paths are re-rooted at `experiment_root`, so a copied root reads its own
    files."""
    from ladder_api.plan import RunConfig

    runs = []
    for name in storage.list_dir(experiment_root):
        if not SIZE_DIR.match(name):
            continue
        uri = run_config_uri(storage.join(experiment_root, name))
        try:
            run = RunConfig.model_validate_json(storage.read_bytes(uri))
        except FileNotFoundError:
            continue
        except ValueError as err:
            raise UserError(f"{uri} is not a Ladder run config ({str(err)[:200]})") from None
        runs.append(run.model_copy(update={"paths": size_paths(experiment_root, run.width)}))
    return sorted(runs, key=lambda r: r.width)


def status_path(state_dir: str | os.PathLike) -> str:
    return storage.join(str(state_dir), STATUS_FILE)


def config_path(state_dir: str | os.PathLike, run_name: str) -> str:
    return storage.join(str(state_dir), CONFIG_DIR, f"{run_name}.json")


def log_path(state_dir: str | os.PathLike, width: int, task: str) -> str:
    """One log per task and size; appended to across resumes so nothing is lost."""
    return storage.join(str(state_dir), size_dir(width), LOGS_DIR, f"{task}.log")


# --- status --------------------------------------------------------------------------------------


def read_status(state_dir: str | os.PathLike) -> ScalingExperimentStatus | None:
    """The status `ladder run` wrote, or None if there is none."""
    path = status_path(state_dir)
    try:
        return ScalingExperimentStatus.model_validate_json(storage.read_bytes(path))
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise UserError(f"{path} is not a Ladder status file ({err.__class__.__name__}); "
                        "was the directory written by `ladder run`?") from None


def write_status(state_dir: str | os.PathLike, status: ScalingExperimentStatus) -> None:
    """Replaced whole, so `ladder status` and the report never read half a file."""
    storage.write_text(status_path(state_dir), json.dumps(status.to_wire(), indent=1) + "\n")


# --- checkpoints ---------------------------------------------------------------------------------


def checkpoint_steps(uri: str, confirmed: set[int] | None = None) -> list[int]:
    """Steps of the complete checkpoints under an orbax CheckpointManager directory.

    On a file system orbax writes a step into `<step>.orbax-checkpoint-tmp-*` and renames it to
    `<step>` once complete; on GCS, which cannot rename, it writes `<step>/` in place and
    commit_success.txt last. `confirmed` (steps already seen complete) is updated in place and
    spares a poller asking again.
    """
    names = [n for n in storage.list_dir(uri) if n.isdigit()]
    if not storage.is_remote(uri):
        return sorted(int(n) for n in names if storage.local_path(storage.join(uri, n)).is_dir())
    seen = confirmed if confirmed is not None else set()
    steps = []
    for n in names:
        step = int(n)
        if step in seen or storage.size(storage.join(uri, n, COMMIT_MARKER)) is not None:
            seen.add(step)
            steps.append(step)
    seen.intersection_update(steps)  # a step orbax deleted (keep) is forgotten
    return sorted(steps)


# --- metrics -------------------------------------------------------------------------------------


class MetricsWriter:
    """The trainer's metrics.jsonl. Written whole each time (an object cannot be appended to), at
    most every `min_interval_s` on GCS; flush() at the end. On resume, lines past the resumed
    step are dropped (they were never checkpointed), so the file describes one trajectory."""

    def __init__(self, uri: str, resume_step: int, min_interval_s: float | None = None):
        if min_interval_s is None:
            min_interval_s = METRICS_MIN_INTERVAL_S if storage.is_remote(uri) else 0.0
        self.uri = uri
        self.min_interval_s = min_interval_s
        self.lines: list[str] = []
        try:
            old = storage.read_text(uri).splitlines()
        except FileNotFoundError:
            old = []
        for line in old:
            try:
                if json.loads(line).get("step", 0) <= resume_step:
                    self.lines.append(line)
            except (json.JSONDecodeError, AttributeError):
                continue
        self._dirty = len(self.lines) != len(old)
        self._last = float("-inf")

    def write(self, record: dict) -> None:
        self.lines.append(json.dumps(record, sort_keys=True))
        self._dirty = True
        if time.monotonic() - self._last >= self.min_interval_s:
            self.flush()

    def flush(self) -> None:
        if self._dirty:
            storage.write_text(self.uri, "".join(f"{line}\n" for line in self.lines))
            self._dirty = False
            self._last = time.monotonic()


class MetricsTail:
    """Follows a metrics file, returning only the lines completed since the last poll.

    The file is rewritten whole, and a resumed trainer drops the lines past its checkpoint; the
    last line read is therefore read again with the new bytes, and if it is no longer where it
    was the file is read from the start."""

    def __init__(self, uri: str):
        self.uri = uri
        self.offset = 0  # bytes consumed, up to the end of the last complete line
        self.last: dict | None = None
        self._last_line = b""

    def _chunk(self) -> bytes:
        chunk = storage.read_bytes(self.uri, start=self.offset - len(self._last_line))
        if chunk.startswith(self._last_line):
            return chunk[len(self._last_line):]
        self.offset, self._last_line = 0, b""  # rewritten differently: start over
        return storage.read_bytes(self.uri)

    def poll(self) -> list[dict]:
        size = storage.size(self.uri)
        if size is None or size == self.offset:
            return []
        chunk = self._chunk()
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        complete = chunk[: end + 1]
        self.offset += end + 1
        self._last_line = complete[complete.rfind(b"\n", 0, end) + 1:]
        records = []
        for line in complete.splitlines():
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(rec, dict):
                records.append(rec)
        if records:
            self.last = records[-1]
        return records


def read_metrics(uri: str) -> list[dict]:
    """Every complete line of a metrics file; [] when there is none yet."""
    return MetricsTail(uri).poll()


# --- results -------------------------------------------------------------------------------------


def new_writer_id() -> str:
    """Unique per writer, and starting with the UTC time so that a later writer sorts later."""
    ns = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"
    host = re.sub(r"[^A-Za-z0-9.-]+", "-", socket.gethostname())[:40] or "host"
    return f"{stamp}-{host}-{os.getpid()}-{secrets.token_hex(3)}"


class ResultsWriter:
    """One writer's results: each write() creates one new object, never replaces one."""

    def __init__(self, prefix: str, writer_id: str | None = None):
        self.prefix = prefix
        self.writer_id = writer_id or new_writer_id()
        self._seq = 0
        self._lock = threading.Lock()

    def write(self, results: Iterable[Result]) -> str | None:
        """Store `results`; returns the object written (None for nothing to write)."""
        entries = sorted((r.to_wire() for r in results), key=lambda d: d["id"])
        if not entries:
            return None
        with self._lock:
            self._seq += 1
            uri = storage.join(self.prefix, f"{self.writer_id}-{self._seq:06d}.json")
        storage.write_text(uri, json.dumps(entries, indent=1, sort_keys=True) + "\n", exclusive=True)
        return uri


def _parse_results(uri: str, raw: bytes) -> list[Result]:
    try:
        data = json.loads(raw)
        if not isinstance(data, list):
            raise ValueError("not a JSON list")
        return [Result.model_validate(d) for d in data]
    except (ValueError, ValidationError) as err:
        raise UserError(
            f"{uri} is not a Ladder results file (a JSON list of results): {str(err)[:200]}; move it "
            "out of the results folder (its measurements are then taken again)"
        ) from None


_POOL: list[ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def _read_pool() -> ThreadPoolExecutor:
    """The threads that fetch result objects, shared by every reader of the process: they outlive
    a poll, and with them each thread's storage client and connection (a new one costs ~40 ms, a
    read on an open one ~2 ms)."""
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(READ_WORKERS, thread_name_prefix="ladder-results-read"))
        return _POOL[0]


class ResultsReader:
    """The merged results under a prefix. Objects are write-once, so each is read once and kept:
    a poll costs one listing plus the objects written since the last one. `keep` maps each result
    as it is read to what is kept of it (a long-lived reader drops what it never uses, e.g. the
    bootstrap replicates of metrics it does not rank by)."""

    def __init__(self, prefix: str, keep: Callable[[Result], Result] | None = None):
        self.prefix = prefix
        self.keep = keep
        self._objects: dict[str, list[Result]] = {}
        self._legacy: list[Result] | None = None

    def _parse(self, uri: str, raw: bytes) -> list[Result]:
        results = _parse_results(uri, raw)
        return results if self.keep is None else [self.keep(r) for r in results]

    def _read_legacy(self) -> list[Result]:
        """A size folder's results.json beside its results/ (the layout before results/)."""
        if self._legacy is None:
            self._legacy = []
            parent, _, name = self.prefix.rstrip("/").rpartition("/")
            if name == RESULTS_DIR:
                uri = storage.join(parent, LEGACY_RESULTS_FILE)
                with contextlib.suppress(FileNotFoundError):
                    self._legacy = self._parse(uri, storage.read_bytes(uri))
        return self._legacy

    def _read(self, name: str) -> tuple[str, list[Result] | None]:
        uri = storage.join(self.prefix, name)
        try:
            return name, self._parse(uri, storage.read_bytes(uri))
        except FileNotFoundError:  # deleted since the listing
            return name, None

    def poll(self) -> dict[str, Result]:
        """Every recorded result by id; where writers disagree, the object sorting last wins.
        New objects on an object store are fetched READ_WORKERS at a time (the paper's grid with
        every checkpoint is thousands of objects, each a round trip)."""
        names = [n for n in storage.list_dir(self.prefix) if n.endswith(".json") and not n.startswith(".")]
        self._objects = {n: self._objects[n] for n in names if n in self._objects}
        new = [n for n in names if n not in self._objects]
        if len(new) > 1 and storage.is_remote(self.prefix):
            read = list(_read_pool().map(self._read, new))
        else:
            read = [self._read(n) for n in new]
        self._objects.update((n, rs) for n, rs in read if rs is not None)
        merged = {r.id: r for r in self._read_legacy()}
        for n in sorted(self._objects):
            merged.update((r.id, r) for r in self._objects[n])
        return merged


def read_results(prefix: str) -> list[Result]:
    """The merged results under a prefix, sorted by id; [] when none are recorded."""
    merged = ResultsReader(prefix).poll()
    return [merged[k] for k in sorted(merged)]


class ResultsStore:
    """The evaluator's results outside a cluster: what is recorded (to skip it) and new writes."""

    def __init__(self, prefix: str, writer_id: str | None = None):
        self.prefix = prefix
        self._reader = ResultsReader(prefix)
        self._writer = ResultsWriter(prefix, writer_id)

    def existing(self) -> dict[str, Result]:
        return self._reader.poll()

    def write(self, results: Iterable[Result]) -> None:
        self._writer.write(results)

    def flush(self) -> None:
        """Nothing to do: every write() is stored when it returns."""
