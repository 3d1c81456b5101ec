"""The runner's process management with stand-in pods (tests/local/fake_pods.py): resume from
the newest checkpoint after an interruption, skip recorded measurements, report failures."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from ladder_api import artifacts
from ladder_api.artifacts import size_paths
from ladder_api.errors import UserError
from ladder_api.status import ScalingExperimentStatus
from ladder_local.lock import RunLock, runner_alive
from ladder_local.runner import LocalRunner
from tests.local.conftest import tiny_experiment, write_fake_python

DEADLINE_S = 60


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _runner(exp, out, fake_python, log, **env):
    import os

    full_env = {**os.environ, "FAKE_LOG": str(log), **env}
    return LocalRunner(exp, out, python=fake_python, poll_s=0.05, env=full_env)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One full run of tiny_experiment() for the module: (outcome, its folder, its calls log).
    Tests that go on from a finished run work on a copy (`_copy_of`)."""
    root = tmp_path_factory.mktemp("finished")
    out, log = root / "run", root / "calls.log"
    return _runner(tiny_experiment(), out, write_fake_python(root), log).run(), out, log


def _copy_of(finished, tmp_path) -> tuple[Path, Path]:
    """The finished run moved to tmp_path/run (the runner derives every path from its folder)."""
    _, out, log = finished
    shutil.copytree(out, tmp_path / "run")
    shutil.copy(log, tmp_path / "calls.log")
    return tmp_path / "run", tmp_path / "calls.log"


def test_full_run_then_rerun_does_nothing_twice(tmp_path, fake_python, finished):
    exp = tiny_experiment()
    outcome, first_out, first_log = finished
    assert outcome.exit_code == 0, outcome.messages
    st = ScalingExperimentStatus.model_validate_json((first_out / "status.json").read_text())
    assert st.phase.value == "Succeeded" and st.summary.progress == "2/2"
    assert [(s.measurements.recorded, s.measurements.expected) for s in st.sizes] == [(16, 16), (16, 16)]
    assert "results" not in st.to_wire() and st.summary.frontier and st.summary.measured == "32/32"
    # the storage root alone describes the run: each size's config beside its files
    from ladder_api.artifacts import read_run_configs
    assert [r.width for r in read_run_configs(str(first_out))] == [8, 16]
    assert [s.checkpoint_step for s in st.sizes] == [6, 6]
    assert _calls(first_log) == ["ladder_trainer c8 start=0", "ladder_evaluator c8 start=0",
                                 "ladder_trainer c16 start=0", "ladder_evaluator c16 start=0"]
    # configs are the exact RunConfig bytes the subprocesses read
    config = json.loads((first_out / "configs" / "tiny-c8.json").read_text())
    assert config["paths"]["root"] == str(first_out / "c8")

    out, log = _copy_of(finished, tmp_path)
    again = _runner(exp, out, fake_python, log).run()
    assert again.exit_code == 0 and len(_calls(log)) == 4  # nothing started again
    assert again.status.summary == st.summary
    assert [s.measurements for s in again.status.sizes] == [s.measurements for s in st.sizes]


def test_force_eval_measures_again_without_retraining(tmp_path, fake_python, finished):
    out, log = _copy_of(finished, tmp_path)
    runner = _runner(tiny_experiment(), out, fake_python, log)
    runner.force_eval = True
    outcome = runner.run()
    assert outcome.exit_code == 0 and [s.measurements.recorded for s in outcome.status.sizes] == [16, 16]
    assert _calls(log)[4:] == ["ladder_evaluator c8 start=0 force", "ladder_evaluator c16 start=0 force"]


def test_new_grid_points_are_evaluated_without_retraining(tmp_path, fake_python, finished):
    out, log = _copy_of(finished, tmp_path)
    wider = tiny_experiment(steps=6, guidanceScales=[1.0, 3.0, 5.0])
    outcome = _runner(wider, out, fake_python, log).run()
    assert outcome.exit_code == 0
    assert _calls(log)[4:] == ["ladder_evaluator c8 start=0", "ladder_evaluator c16 start=0"]
    counts = [(s.measurements.recorded, s.measurements.expected) for s in outcome.status.sizes]
    assert counts == [(24, 24)] * 2


def test_interrupt_saves_and_rerun_resumes_from_the_checkpoint(tmp_path, fake_python):
    exp, out, log = tiny_experiment(widths=(8,), steps=6), tmp_path / "run", tmp_path / "calls.log"
    runner = _runner(exp, out, fake_python, log, FAKE_BLOCK_AT="3")
    metrics = out / "c8" / "metrics.jsonl"

    def stop_when_step_3_is_logged():
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            if metrics.exists() and '"step": 3' in metrics.read_text():
                runner.request_stop()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=stop_when_step_3_is_logged)
    watcher.start()
    outcome = runner.run()
    watcher.join()
    assert outcome.interrupted and outcome.exit_code == 42
    st = outcome.status
    assert st.phase.value == "Suspended" and st.sizes[0].phase.value == "Suspended"
    assert st.sizes[0].checkpoint_step == 3  # saved on SIGTERM
    suspended = next(c for c in st.conditions if c.type == "Suspended")
    assert (suspended.status, suspended.reason) == ("True", "Interrupted") and "ladder run" in st.message
    assert not runner_alive(out)

    resumed = _runner(exp, out, fake_python, log).run()
    assert resumed.exit_code == 0
    assert _calls(log) == [
        "ladder_trainer c8 start=0", "ladder_trainer c8 start=3", "ladder_evaluator c8 start=0"
    ]
    steps = [json.loads(ln)["step"] for ln in metrics.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # no step trained twice


def test_evaluation_workers_run_as_processes_whose_union_is_one_workers_results(tmp_path, fake_python,
                                                                                 finished):
    """evaluation.workers = 3: three evaluator processes per size (`--worker i`, run side by side
    under -j), each scoring its share; together they record exactly the ids and values one
    evaluator records, and the size is evaluated only when all three are done."""
    one, many_out = finished[0], tmp_path / "many"
    runner = _runner(tiny_experiment(workers=3), many_out, fake_python, tmp_path / "many.log")
    runner.max_parallel = 4
    many = runner.run()
    assert one.exit_code == 0 and many.exit_code == 0, many.messages
    calls = _calls(tmp_path / "many.log")
    for width in (8, 16):
        workers = sorted(c for c in calls if c.startswith(f"ladder_evaluator c{width} "))
        assert workers == [f"ladder_evaluator c{width} start=0 worker={i}" for i in range(3)]
        assert all((many_out / f"c{width}" / "logs" / f"evaluate-{i}.log").exists() for i in range(3))
    assert many.status.phase.value == "Succeeded" and many.status.summary.progress == "2/2"
    def recorded(outcome):
        return {r.id: r.value for w in (8, 16)
                for r in artifacts.read_results(size_paths(outcome.status.storage_root, w).results)}

    assert recorded(many) == recorded(one) and recorded(one)
    again = _runner(tiny_experiment(workers=3), many_out, fake_python, tmp_path / "many.log").run()
    assert again.exit_code == 0 and _calls(tmp_path / "many.log") == calls  # nothing started again


def test_a_failing_trainer_fails_its_size_with_the_log_tail(tmp_path, fake_python):
    out, log = tmp_path / "run", tmp_path / "calls.log"
    outcome = _runner(tiny_experiment(widths=(8,)), out, fake_python, log, FAKE_FAIL="3").run()
    assert outcome.exit_code == 1
    assert outcome.status.phase.value == "Failed"
    assert outcome.status.sizes[0].phase.value == "Failed"
    assert "exited with code 3" in outcome.messages[0] and "failing on purpose" in outcome.messages[0]
    assert (out / "c8" / "logs" / "train.log").exists()


def test_a_user_error_in_a_pod_stops_launching_and_exits_2(tmp_path, fake_python):
    out, log = tmp_path / "run", tmp_path / "calls.log"
    outcome = _runner(tiny_experiment(), out, fake_python, log, FAKE_FAIL="2").run()
    assert outcome.exit_code == 2 and _calls(log) == ["ladder_trainer c8 start=0"]
    assert [s.phase.value for s in outcome.status.sizes] == ["Failed", "Pending"]


def test_one_runner_per_directory(tmp_path, fake_python):
    out = tmp_path / "run"
    with RunLock(out):
        assert runner_alive(out)
        with pytest.raises(UserError, match="in use by another `ladder run`"):
            _runner(tiny_experiment(), out, fake_python, tmp_path / "l").run()
    assert not runner_alive(out)


def _wait_for(predicate, what: str) -> None:
    end = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_children_save_when_the_runner_is_killed(tmp_path, fake_python):
    """SIGKILL of `ladder run` cannot be caught; the children still get SIGTERM and save."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    script = (
        "import sys; from pathlib import Path\n"
        "from tests.local.conftest import tiny_experiment, write_fake_python\n"
        "from ladder_local.runner import LocalRunner\n"
        f"LocalRunner(tiny_experiment(widths=(8,)), Path({str(out)!r}), python={fake_python!r},\n"
        "            poll_s=0.05).run()\n"
    )
    env = {**os.environ, "FAKE_BLOCK_AT": "3", "FAKE_LOG": str(tmp_path / "calls.log")}
    root = Path(__file__).resolve().parents[2]
    runner = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=root)
    try:
        metrics = out / "c8" / "metrics.jsonl"
        _wait_for(lambda: metrics.exists() and '"step": 3' in metrics.read_text(), "step 3")
        assert not (out / "c8" / "checkpoints" / "3").exists()
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        _wait_for(lambda: (out / "c8" / "checkpoints" / "3").exists(), "the orphaned trainer's checkpoint")
    finally:
        if runner.poll() is None:
            runner.kill()


def test_after_start_a_sharding_edit_resumes_and_a_recipe_edit_is_refused(tmp_path, fake_python, finished):
    exp = tiny_experiment()
    out, log = _copy_of(finished, tmp_path)
    sharded = exp.model_copy(deep=True)
    sharded.spec.training.sharding.fsdp = 2
    assert _runner(sharded, out, fake_python, log).run().exit_code == 0
    assert len(_calls(log)) == 4, "nothing retrained: sharding is not the recipe"
    faster = exp.model_copy(deep=True)
    faster.spec.training.learning_rate = 0.5
    with pytest.raises(UserError, match=r"spec.training.learningRate: 0.0001 -> 0.5"):
        _runner(faster, out, fake_python, log).run()


def test_an_experiment_started_before_the_protocol_defaults_resumes_with_its_own(tmp_path, fake_python):
    """An upgrade: configs written before `training.initialization` / `training.ema.warmup` existed
    (stripped here from the first run's) resume under the legacy values, nothing retrained and
    nothing refused, while a new experiment gets the paper's defaults. The operator applies the
    same rule (tests/operator/test_reconcile.py)."""
    exp, out, log = tiny_experiment(), tmp_path / "run", tmp_path / "calls.log"
    assert _runner(exp, out, fake_python, log).run().exit_code == 0
    for width in (8, 16):
        path = artifacts.config_path(out, f"tiny-c{width}")
        old = json.loads(Path(path).read_text())
        del old["training"]["initialization"], old["training"]["ema"]["warmup"]
        Path(path).write_text(json.dumps(old))
    runner = _runner(exp, out, fake_python, log)
    assert runner.run().exit_code == 0
    assert len(_calls(log)) == 4, "nothing retrained"
    training = runner.plan.run(8).training
    assert (training.initialization, training.ema.warmup) == ("lecun-normal", False)
    new = _runner(exp, tmp_path / "new", fake_python, log).plan.run(8).training  # nothing started there
    assert (new.initialization, new.ema.warmup) == ("compvis", True)
