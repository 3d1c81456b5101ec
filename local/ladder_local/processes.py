"""The trainer and evaluator as subprocesses, started the way a pod starts them.

Each child gets its own session (process group), so a Ctrl-C in the terminal reaches only the
runner, which then sends SIGTERM to the child's main process alone, as the kubelet does to a
container's PID 1: the trainer saves a checkpoint and exits RESTARTABLE (42). Kill (a second
Ctrl-C, or the grace period running out) goes to the whole group. If the runner itself dies
(SIGKILL), Linux sends each child SIGTERM (PR_SET_PDEATHSIG), so it still saves and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ladder_api.plan import RunConfig

TRAIN = "train"
EVALUATE = "evaluate"
PREPARE = "prepare"


@dataclass(frozen=True)
class Task:
    width: int
    kind: str  # TRAIN or EVALUATE
    argv: tuple[str, ...]
    log: Path
    worker: int = 0  # which of evaluation.workers an evaluation is (training: 0)


def train_task(run: RunConfig, config: Path, log: Path, python: str = sys.executable) -> Task:
    return Task(run.width, TRAIN, (python, "-m", "ladder_trainer", "--config", str(config)), log)


def evaluate_task(
    run: RunConfig, config: Path, log: Path, python: str = sys.executable, force: bool = False,
    worker: int = 0,
) -> Task:
    """Evaluator process `worker` of run.evaluation.workers: it scores that worker's share of the
    grid, as pod JOB_COMPLETION_INDEX = worker of the evaluation JobSet does."""
    argv = (python, "-m", "ladder_evaluator", "--config", str(config), "--checkpoint", run.paths.checkpoints)
    if run.evaluation.workers > 1:
        argv += ("--worker", str(worker))
    return Task(run.width, EVALUATE, argv + (("--force",) if force else ()), log, worker)


def prepare_task(run: RunConfig, config: Path, log: Path, python: str = sys.executable) -> Task:
    """spec.data.prepare as one worker (the cluster shards it over pods; the output is the same)."""
    prep = run.data.prepare
    assert prep is not None
    argv = prep.command(str(config), run.data.train_uri)[1:] + ["--num-workers", "1", "--worker-index", "0"]
    return Task(0, PREPARE, (python, *argv), log)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the runner dies, so a runner
    killed with SIGKILL (or a test timeout) still makes the trainer save and exit instead of
    leaving it running unattended in its own session."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Child:
    """One running task; its output is appended to the task's log file."""

    def __init__(self, task: Task, env: dict[str, str] | None = None, cwd: Path | None = None):
        self.task = task
        self.started = time.monotonic()
        self.terminated = False
        task.log.parent.mkdir(parents=True, exist_ok=True)
        self._log = task.log.open("ab")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._log.write(f"\n=== ladder run {stamp}: {' '.join(task.argv)}\n".encode())
        self._log.flush()
        child_env = dict(os.environ if env is None else env)
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        self.popen = subprocess.Popen(
            list(task.argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        rc = self.popen.poll()
        if rc is not None and not self._log.closed:
            self._log.close()
        return rc

    def terminate(self) -> None:
        """SIGTERM to the main process only: it is the one that saves and exits 42."""
        self.terminated = True
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.terminated = True
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.popen.kill()


def log_tail(path: Path, lines: int = 12, max_chars: int = 2000) -> str:
    """The end of a log, for a failure message that shows what went wrong without opening it."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64_000))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    kept = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    out = "\n".join(kept)
    return out[-max_chars:]
