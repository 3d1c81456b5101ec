"""`python -m ladder_evaluator --config RUN.json --checkpoint URI`: score a size's checkpoints
over the experiment's evaluation grid and record each measurement as a Result.

Where results go: into the results folder run.paths.results (or --results), local or gs://,
one new object per write (see ladder_api.artifacts), in a cluster as outside one. In a cluster
(KUBERNETES_SERVICE_HOST set, or --status cluster) the evaluator also reports its progress in its
size's status entry, which wakes the operator to update the status digest (see status_store).
Ids already recorded are skipped unless --force. User errors (missing checkpoint, missing
weights, reference statistics of the wrong dimension, bad config, a deleted experiment) print one
message and exit 2, with no traceback; infrastructure faults (a transient GCS error, a transient
Kubernetes API failure that escapes) exit 42 so the JobSet restarts the evaluation, which skips
what was already recorded; anything else exits 1 (ladder_api.failures).
"""

from __future__ import annotations

import argparse
import logging
import os

from ladder_api import exitcodes, failures
from ladder_api.artifacts import ResultsStore
from ladder_api.grid import worker_of_pod
from ladder_api.loading import load_run_config
from ladder_api.plan import RunConfig
from ladder_evaluator.evaluate import Progress, evaluate
from ladder_evaluator.results import ResultStore
from ladder_kube.errors import ApiError

log = logging.getLogger("ladder_evaluator")


def make_store(run: RunConfig, mode: str, results: str | None, worker: int = 0) -> ResultStore:
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if mode == "cluster" or (mode == "auto" and in_cluster and not results):
        from ladder_evaluator import status_store

        return status_store.from_environment(run, results, worker)
    return ResultsStore(results or run.paths.results)


class RichProgress(Progress):
    """Two bars: grid points (with the current setting) and samples of the current point."""

    def __init__(self, enabled: bool = True):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bars

        self.bars = Bars(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled,
        )

    def start(self, total_points: int, samples_per_point: int) -> None:
        self.bars.start()
        self.grid = self.bars.add_task("grid", total=total_points)
        self.per_point = samples_per_point
        self.imgs = self.bars.add_task("samples", total=samples_per_point)

    def point(self, label: str) -> None:
        self.bars.update(self.grid, description=label)
        self.bars.reset(self.imgs, total=self.per_point)

    def samples(self, n: int) -> None:
        self.bars.advance(self.imgs, n)

    def done_point(self, skipped: bool) -> None:
        self.bars.advance(self.grid)

    def close(self) -> None:
        self.bars.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ladder_evaluator", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="RunConfig JSON (`ladder plan` writes one per size)")
    parser.add_argument("--checkpoint", required=True, help="checkpoint directory (local path or gs://)")
    parser.add_argument("--results", "--results-file", dest="results", default=None, metavar="DIR",
                        help="results folder, local or gs:// (default: run.paths.results)")
    parser.add_argument("--force", action="store_true", help="re-evaluate ids already recorded")
    parser.add_argument("--status", choices=["auto", "cluster", "file"], default="auto",
                        help="cluster: also report progress in the experiment's status "
                        "(auto: when in a cluster)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--worker", type=int, default=None, metavar="INDEX",
                        help="which of evaluation.workers this process is (default: the Job's "
                        "JOB_COMPLETION_INDEX, else 0); it scores only its share of the grid")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every restore at INFO
    try:
        run = load_run_config(args.config)
        worker = worker_of_pod(os.environ) if args.worker is None else args.worker
        store = make_store(run, args.status, args.results, worker)
        try:
            written = evaluate(run, args.checkpoint, store, force=args.force,
                               progress=RichProgress(enabled=not args.no_progress), worker=worker)
        finally:
            store.flush()
        log.info("c%d: %d results written", run.width, len(written))
        return exitcodes.OK
    except ApiError as err:
        if not err.transient:
            return failures.report(err, log)
        log.error("the Kubernetes API server stayed unreachable (%s); exiting %d to be restarted",
                  err, exitcodes.RESTARTABLE)
        return exitcodes.RESTARTABLE
    except Exception as err:  # noqa: BLE001 - every failure gets the exit code its kind needs
        return failures.report(err, log)
