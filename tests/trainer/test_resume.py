"""Preemption: N steps straight equal N/2 steps, a real SIGTERM, a resume and N/2 more."""

import json
import signal
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from ladder_api import exitcodes
from ladder_trainer import checkpointing

from .conftest import ONE_LEVEL, make_run, start_trainer, write_run

N = 6


def _wait_for(path, proc, timeout=240.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited {proc.returncode} early:\n{proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("trainer never reached the pause step")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigterm_resume_gives_identical_params(tmp_path):
    kw = dict(steps=N, checkpoint={"intervalSteps": 100, "keep": 2}, logEverySteps=1,
              lrSchedule={"kind": "cosine", "warmupSteps": 2})
    straight = make_run(tmp_path / "a", **kw)
    cut = make_run(tmp_path / "b", **kw)
    marker = tmp_path / "paused"
    # The interrupted run starts once the straight one has logged a step: its train step is then
    # in the persistent compilation cache, which the interrupted and resumed runs load (started
    # together, both would compile it).
    a = start_trainer(write_run(straight, tmp_path / "a.json"))
    _wait_for(Path(straight.paths.metrics), a)
    b = start_trainer(write_run(cut, tmp_path / "b.json"),
                      LADDER_TRAINER_PAUSE_AT_STEP=str(N // 2), LADDER_TRAINER_PAUSE_MARKER=str(marker))
    _wait_for(marker, b)
    b.send_signal(signal.SIGTERM)
    out_b = b.communicate(timeout=240)[0]
    assert b.returncode == exitcodes.RESTARTABLE, out_b[-3000:]
    assert checkpointing.list_steps(cut.paths.checkpoints) == [N // 2]

    c = start_trainer(str(tmp_path / "b.json"))
    out_c = c.communicate(timeout=240)[0]
    assert c.returncode == 0, out_c[-3000:]
    assert f"resumed from {cut.paths.checkpoints} step {N // 2}" in out_c
    out_a = a.communicate(timeout=240)[0]
    assert a.returncode == 0, out_a[-3000:]

    for ema in (False, True):
        pa, sa = checkpointing.restore_params(straight.paths.checkpoints, ema=ema)
        pb, sb = checkpointing.restore_params(cut.paths.checkpoints, ema=ema)
        assert sa == sb == N
        for x, y in zip(jax.tree_util.tree_leaves(pa), jax.tree_util.tree_leaves(pb), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # The metrics file holds one trajectory: steps 1..N once each, the same losses as straight.
    la = [json.loads(x) for x in Path(straight.paths.metrics).read_text().splitlines()]
    lb = [json.loads(x) for x in Path(cut.paths.metrics).read_text().splitlines()]
    assert [r["step"] for r in lb] == list(range(1, N + 1))
    assert [r["loss"] for r in la] == [r["loss"] for r in lb]


def _preempt_at(config: str, step: int, marker: Path) -> str:
    """Start the trainer, SIGTERM it at the top of `step`, return its output (exit code 42)."""
    proc = start_trainer(config, LADDER_TRAINER_PAUSE_AT_STEP=str(step),
                         LADDER_TRAINER_PAUSE_MARKER=str(marker))
    _wait_for(marker, proc)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=240)[0]
    assert proc.returncode == exitcodes.RESTARTABLE, out[-3000:]
    return out


@pytest.mark.slow
def test_sigterm_at_a_step_already_saved_exits_42_without_saving_again(tmp_path):
    """A stop that lands on a checkpointed step (in the iteration that wrote it, or right after a
    restore) must not save that step again: orbax refuses (StepAlreadyExistsError), the trainer
    would exit 1 and the JobSet would fail instead of restarting."""
    run = make_run(tmp_path, ladder=ONE_LEVEL, steps=4, checkpoint={"intervalSteps": 2, "keep": 3})
    config = write_run(run, tmp_path / "run.json")
    _preempt_at(config, 2, tmp_path / "written")  # the iteration that saved step 2 just ended
    assert checkpointing.list_steps(run.paths.checkpoints) == [2]
    out = _preempt_at(config, 2, tmp_path / "restored")  # stopped while resuming from step 2
    assert f"resumed from {run.paths.checkpoints} step 2" in out
    assert checkpointing.list_steps(run.paths.checkpoints) == [2]
    last = start_trainer(config)
    out = last.communicate(timeout=240)[0]
    assert last.returncode == 0, out[-3000:]
    assert checkpointing.list_steps(run.paths.checkpoints) == [2, 4]
