"""`ladder run`: execute a Plan on this machine, write status.json as work progresses, and stop
cleanly on Ctrl-C / SIGTERM so that running again resumes.

Scheduling: at most spec.local.maxParallel subprocesses at once (or the -j override). An
evaluation whose size is trained goes before the next size's training, so results arrive early
and the frontier fills in while larger sizes train. A size's evaluation is evaluation.workers
processes (`--worker i`, the partition the evaluation JobSet's pods use), each scoring its share
of the grid; the size is evaluated when all have finished, and a restarted worker redoes only
the points its share still misses.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ladder_api import artifacts, storage
from ladder_api.conditions import Preparation
from ladder_api.exitcodes import OK, RESTARTABLE, USER_ERROR
from ladder_api.grid import expected_ids
from ladder_api.plan import Plan, expand
from ladder_api.recipe import keep_started_defaults, recipe_from_config
from ladder_api.spec import ScalingExperiment
from ladder_api.status import ScalingExperimentStatus, SizePhase
from ladder_local import layout
from ladder_local.decisions import SizeDecision, check_same_recipe, decide
from ladder_local.lock import RunLock
from ladder_local.observe import SizeObservation, SizeWatcher
from ladder_local.processes import (
    EVALUATE,
    TRAIN,
    Child,
    Task,
    evaluate_task,
    log_tail,
    prepare_task,
    train_task,
)
from ladder_local.status_build import SizeActivity, build_status
from ladder_local.view import NullView, Snapshot, View

EXIT_FAILED = 1
MAX_RESTARTS = 3
NOT_STARTED = "interrupted before it ran"


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class RunOutcome:
    state_dir: Path
    status: ScalingExperimentStatus
    exit_code: int
    interrupted: bool = False
    messages: list[str] = field(default_factory=list)


class LocalRunner:
    """Runs `exp` with its state (lock, status, configs, logs) in `state_dir` and its outputs
    under `outputs` (default: `state_dir` too; a gs:// URI is observed through the storage
    layer)."""

    def __init__(
        self,
        exp: ScalingExperiment,
        state_dir: Path,
        *,
        outputs: str | None = None,
        view: View | None = None,
        python: str = sys.executable,
        max_parallel: int | None = None,
        force_eval: bool = False,
        poll_s: float = 0.5,
        remote_poll_s: float = 5.0,
        stop_grace_s: float = 300.0,
        env: dict[str, str] | None = None,
    ):
        self.exp = exp
        self.state_dir = Path(state_dir)
        self.outputs = outputs if outputs is not None else str(self.state_dir)
        self.view = view or NullView()
        self.python = python
        # -j is taken as given; the spec's maxParallel is capped by the cores this machine has
        self.max_parallel = max_parallel or min(exp.spec.local.max_parallel, os.cpu_count() or 1)
        self.force_eval = force_eval
        self.poll_s = poll_s
        self.stop_grace_s = stop_grace_s
        self.env = env
        self.plan: Plan = expand(exp, root=self.outputs)
        self.remote_poll_s = remote_poll_s
        self.watchers = {run.width: SizeWatcher(run, remote_poll_s) for run in self.plan.runs}
        self.activities: dict[int, SizeActivity] = {}
        self.stage: dict[int, str] = {}  # "train", "evaluate", "done", "failed"
        self.children: dict[tuple[int, int], Child] = {}  # by (width, worker)
        self.restarts: dict[int, int] = {}
        self.workers_left: dict[int, set[int]] = {}  # evaluation workers of a size not finished
        self.messages: list[str] = []
        self._signals = 0
        self._wake = threading.Event()
        self._stopping_since: float | None = None
        self._user_error = False
        self._status: ScalingExperimentStatus | None = None
        self._written: str | None = None
        self._preparing: Child | None = None
        self.preparation: Preparation | None = None

    # --- preparation ----------------------------------------------------------------------

    def _write_configs(self) -> None:
        started = {}
        for run in self.plan.runs:
            previous = layout.read_previous_config(artifacts.config_path(self.state_dir, run.name))
            if previous is not None and self.watchers[run.width].observe(fresh=True).checkpoint_steps:
                started[run.width] = previous
        if started:  # a started experiment keeps the defaults it started with (ladder_api.recipe)
            recorded = recipe_from_config(next(iter(started.values())))
            self.exp = keep_started_defaults(self.exp, recorded)
            self.plan = expand(self.exp, root=self.outputs)
            self.watchers = {run.width: SizeWatcher(run, self.remote_poll_s) for run in self.plan.runs}
        for run in self.plan.runs:
            check_same_recipe(started.get(run.width), run, run.width in started, run.paths.root)
        for run in self.plan.runs:
            storage.write_text(artifacts.config_path(self.state_dir, run.name), run.config_json())
            artifacts.write_run_config(run)  # beside its outputs too: `ladder report <outputs>`

    def _initial_decisions(self) -> list[SizeDecision]:
        decisions = []
        for run in self.plan.runs:
            obs = self.watchers[run.width].observe()
            d = decide(run, obs.checkpoint_steps, {r.id for r in obs.results}, force_eval=self.force_eval)
            decisions.append(d)
            if d.train:
                self.stage[run.width] = TRAIN
                self.activities[run.width] = SizeActivity(SizePhase.pending, d.reason)
            elif d.evaluate:
                self._to_evaluate(run.width)
                self.activities[run.width] = SizeActivity(SizePhase.queued, d.reason)
            else:
                self.stage[run.width] = "done"
                self.activities[run.width] = SizeActivity(SizePhase.succeeded, d.reason)
        return decisions

    # --- signals ---------------------------------------------------------------------------

    def _on_signal(self, signum, _frame) -> None:
        self._signals += 1
        self._wake.set()
        if self._signals >= 2:
            for child in [*self.children.values(), *([self._preparing] if self._preparing else [])]:
                child.kill()

    def request_stop(self) -> None:
        """What Ctrl-C does; callable from another thread (tests, embedding)."""
        self._on_signal(signal.SIGTERM, None)

    # --- the loop --------------------------------------------------------------------------

    def _to_evaluate(self, width: int) -> None:
        """A size's evaluation is due: every one of its evaluation.workers processes is to run."""
        self.stage[width] = EVALUATE
        self.workers_left[width] = set(range(self.plan.run(width).evaluation.workers))

    def _next_task(self) -> Task | None:
        """Evaluations first (each size's workers, in index order), then training."""
        running = {w for w, _ in self.children}
        for run in self.plan.runs:
            if self.stage[run.width] != EVALUATE:
                continue
            for worker in sorted(self.workers_left[run.width]):
                if (run.width, worker) not in self.children:
                    return self._evaluate_task(run, worker)
        for run in self.plan.runs:
            if self.stage[run.width] == TRAIN and run.width not in running:
                config = Path(artifacts.config_path(self.state_dir, run.name))
                return train_task(run, config, Path(artifacts.log_path(self.state_dir, run.width, TRAIN)),
                                  self.python)
        return None

    def _evaluate_task(self, run, worker: int) -> Task:
        config = Path(artifacts.config_path(self.state_dir, run.name))
        name = EVALUATE if run.evaluation.workers == 1 else f"{EVALUATE}-{worker}"
        log = Path(artifacts.log_path(self.state_dir, run.width, name))
        return evaluate_task(run, config, log, self.python, force=self.force_eval, worker=worker)

    def _child_env(self) -> dict[str, str]:
        """The runner's environment, plus a JAX persistent compilation cache in the run directory
        (unless one is configured) so a resumed size does not compile its programs again."""
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("JAX_COMPILATION_CACHE_DIR", str(self.state_dir / layout.JAX_CACHE_DIR))
        return env

    def _launch(self, task: Task) -> None:
        run = self.plan.run(task.width)
        child = Child(task, env=self._child_env())
        self.children[task.width, task.worker] = child
        phase = SizePhase.training if task.kind == TRAIN else SizePhase.evaluating
        previous = self.activities.get(task.width)
        note = previous.message if previous and previous.phase is not SizePhase.succeeded else None
        self.activities[task.width] = SizeActivity(phase, note)
        self.view.event(f"c{run.width}: {self._label(task)} started (pid {child.pid}; {note or ''}) "
                        f"log: {task.log}")

    def _label(self, task: Task) -> str:
        workers = self.plan.run(task.width).evaluation.workers
        if task.kind == EVALUATE and workers > 1:
            return f"{task.kind} worker {task.worker}/{workers}"
        return task.kind

    def _fail(self, width: int, text: str) -> None:
        self.stage[width] = "failed"
        self.activities[width] = SizeActivity(SizePhase.failed, text.splitlines()[0][:300])
        self.messages.append(f"c{width}: {text}")
        self.view.event(f"c{width}: FAILED: {text}")

    def _reap(self, width: int, child: Child, rc: int) -> None:
        run = self.plan.run(width)
        task = child.task
        del self.children[width, task.worker]
        if self.stage[width] == "failed":  # another worker of this size failed it already
            return
        obs = self.watchers[width].observe(fresh=True)
        if rc != 0 and (child.terminated or self._signals):
            ckpt = max(obs.checkpoint_steps) if obs.checkpoint_steps else None
            where = f"newest checkpoint: step {ckpt}" if ckpt is not None else "no checkpoint yet"
            self.activities[width] = SizeActivity(SizePhase.suspended, f"{task.kind} interrupted ({where})")
            self.view.event(f"c{width}: {task.kind} stopped with exit code {rc} ({where})")
            return
        tail = log_tail(task.log)
        if rc == USER_ERROR:
            self._user_error = True
            self._fail(width, f"{task.kind} rejected its input (exit {rc}); see {task.log}:\n{tail}")
            return
        if rc == RESTARTABLE and self.restarts.get(width, 0) < MAX_RESTARTS:
            # Saved and asked to be restarted (e.g. it caught a SIGTERM we did not send): it
            # resumes from its checkpoint when started again.
            self.restarts[width] = self.restarts.get(width, 0) + 1
            self.activities[width] = SizeActivity(SizePhase.pending, f"{task.kind} restartable (exit 42)")
            self.view.event(f"c{width}: {task.kind} exited restartable; starting it again")
            return
        if rc != 0:
            self._fail(width, f"{task.kind} exited with code {rc}; see {task.log}:\n{tail}")
            return
        if task.kind == TRAIN:
            if run.training.steps not in obs.checkpoint_steps:
                self._fail(width, f"trainer exited 0 but wrote no checkpoint at step {run.training.steps} "
                                  f"under {run.paths.checkpoints}; see {task.log}")
                return
            self._to_evaluate(width)
            self.activities[width] = SizeActivity(SizePhase.queued, "trained; waiting to evaluate")
            self.view.event(f"c{width}: trained to step {run.training.steps}")
            return
        self.workers_left[width].discard(task.worker)
        if self.workers_left[width]:
            self.view.event(f"c{width}: {self._label(task)} finished its share of the grid")
            return
        expected = expected_ids(run, obs.checkpoint_steps)
        got = len(expected & {r.id for r in obs.results})
        self.stage[width] = "done"
        note = f"{got}/{len(expected)} measurements recorded"
        if got < len(expected):
            note += f" (the evaluator recorded fewer than the grid names; see {task.log})"
        self.activities[width] = SizeActivity(SizePhase.succeeded, note)
        self.view.event(f"c{width}: evaluated, {note}")

    def _prepare(self) -> bool:
        """spec.data.prepare: make data.trainUri before any size trains, unless it already holds
        a manifest. Interrupted, it keeps the committed parts and the next run goes on from
        them. False when training must not start (failed or interrupted)."""
        run = self.plan.runs[0]
        if run.data.prepare is None or artifacts.data_prepared(run.data.train_uri):
            return True
        config = Path(artifacts.config_path(self.state_dir, run.name))
        task = prepare_task(run, config, self.state_dir / artifacts.LOGS_DIR / "prepare.log", self.python)
        self.preparation = Preparation(False, f"preparing data into {run.data.train_uri}; log: {task.log}")
        self._preparing = child = Child(task, env=self._child_env())
        self.view.event(f"data: ladder prepare started (pid {child.pid}) log: {task.log}")
        try:
            while (rc := child.poll()) is None:
                if self._signals and not child.terminated:
                    child.terminate()
                self._refresh(active=True)
                self._wake.wait(self.poll_s)
                self._wake.clear()
        finally:
            child.kill()
            self._preparing = None
        if self._signals:
            return False
        if rc == OK:
            self.preparation = None
            self.view.event(f"data: prepared into {run.data.train_uri}")
            return True
        text = f"ladder prepare exited with code {rc}; see {task.log}:\n{log_tail(task.log)}"
        self.preparation = Preparation(True, text.splitlines()[0][:300])
        self.messages.append(f"data: {text}")
        self.view.event(f"data: FAILED: {text}")
        self._user_error = self._user_error or rc == USER_ERROR
        return False

    def _observations(self) -> dict[int, SizeObservation]:
        return {w: watcher.observe() for w, watcher in self.watchers.items()}

    def _refresh(self, *, active: bool) -> None:
        obs = self._observations()
        status = build_status(self.plan, obs, self.activities, active=active, now=utc_now(),
                              previous=self._status, interrupted=bool(self._signals),
                              preparation=self.preparation)
        self._status = status
        text = json.dumps(status.to_wire(), sort_keys=True)
        if text != self._written:
            artifacts.write_status(self.state_dir, status)
            self._written = text
        expected = {w: len(expected_ids(self.plan.run(w), o.checkpoint_steps)) for w, o in obs.items()}
        speeds = {}
        for w, o in obs.items():
            v = (o.last_metrics or {}).get("examples_per_s")
            training = (w, 0) in self.children and self.children[w, 0].task.kind == TRAIN
            speeds[w] = float(v) if isinstance(v, int | float) and training else None
        self.view.update(Snapshot(self.exp.metadata.name, status, expected, speeds))

    def _stop_children(self) -> None:
        if self._stopping_since is None:
            self._stopping_since = time.monotonic()
            self.view.event("stopping: SIGTERM sent to running tasks; they save and exit "
                            "(Ctrl-C again to kill them now)")
            for child in self.children.values():
                child.terminate()
        elif time.monotonic() - self._stopping_since > self.stop_grace_s:
            self.view.event(f"tasks still running {self.stop_grace_s:.0f}s after SIGTERM: killing them")
            for child in self.children.values():
                child.kill()

    def _loop(self) -> None:
        while True:
            for (width, _), child in list(self.children.items()):
                rc = child.poll()
                if rc is not None:
                    self._reap(width, child, rc)
            if self._signals:
                self._stop_children()
            elif not self._user_error:
                while len(self.children) < self.max_parallel:
                    task = self._next_task()
                    if task is None:
                        break
                    self._launch(task)
            if not self.children and (self._signals or self._user_error or self._next_task() is None):
                return
            self._refresh(active=True)
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def run(self) -> RunOutcome:
        storage.check_access(self.outputs)  # a missing bucket or permission: say so before starting
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(self.state_dir):
            self._status = artifacts.read_status(self.state_dir)
            self._write_configs()
            decisions = self._initial_decisions()
            for d in decisions:
                self.view.event(f"c{d.width}: {d.reason}")
            restore = {}
            if threading.current_thread() is threading.main_thread():
                for sig in (signal.SIGINT, signal.SIGTERM):
                    restore[sig] = signal.signal(sig, self._on_signal)
            self.view.start()
            try:
                self._refresh(active=True)
                if self._prepare():
                    self._loop()
            finally:
                for child in list(self.children.values()):
                    child.kill()
                for sig, handler in restore.items():
                    signal.signal(sig, handler)
                interrupted = bool(self._signals)
                if interrupted:
                    for w, stage in self.stage.items():
                        if stage in (TRAIN, EVALUATE) and self.activities[w].phase is not SizePhase.suspended:
                            self.activities[w] = SizeActivity(SizePhase.suspended, NOT_STARTED)
                self._refresh(active=False)
                self.view.stop()
        status = self._status
        if interrupted:
            code = RESTARTABLE
        elif self._user_error:
            code = USER_ERROR
        elif status.phase.value == "Succeeded":
            code = OK
        else:
            code = EXIT_FAILED
        return RunOutcome(self.state_dir, status, code, interrupted, list(self.messages))
