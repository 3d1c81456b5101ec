"""`ladder run` with spec.data.prepare: the real `ladder prepare text-image` (one worker) makes
data.trainUri before any size trains (the trainer and evaluator are the stand-in pods of
tests/local/fake_pods.py); a prepared set is not made again; a failed preparation fails the run
with the reason and trains nothing."""

from __future__ import annotations

from pathlib import Path

from ladder_api.spec import PrepareSpec
from ladder_local.runner import LocalRunner
from ladder_local.view import NullView
from ladder_trainer.data.format import read_manifest
from tests.local.conftest import tiny_experiment
from tests.prepare.conftest import webdataset_shards


class Phases(NullView):
    """The experiment phases the runner showed, in order, each once."""

    def __init__(self):
        self.seen: list[str] = []

    def update(self, snap) -> None:
        phase = snap.status.phase.value
        if not self.seen or self.seen[-1] != phase:
            self.seen.append(phase)


def prepared(tmp_path: Path, shards: Path):
    exp = tiny_experiment(widths=(8,))
    prep = PrepareSpec(webdataset=[str(shards)], batch_size=4, dtype="float32")
    data = exp.spec.data.model_copy(update={"train_uri": str(tmp_path / "train"), "prepare": prep})
    return exp.model_copy(update={"spec": exp.spec.model_copy(update={"data": data})})


def _run(exp, out, fake_python, log, view=None, **env):
    import os

    full_env = {**os.environ, "FAKE_LOG": str(log), **env}
    return LocalRunner(exp, out, python=fake_python, poll_s=0.05, env=full_env, view=view).run()


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_prepare_runs_first_and_once(tmp_path, fake_python):
    shards = webdataset_shards(tmp_path / "shards", counts=(3, 2), bad=False)
    exp, out, log, view = prepared(tmp_path, shards), tmp_path / "run", tmp_path / "calls.log", Phases()
    outcome = _run(exp, out, fake_python, log, view)
    assert outcome.exit_code == 0, outcome.messages
    assert _calls(log) == ["ladder_cli prepare text-image", "ladder_trainer c8 start=0",
                           "ladder_evaluator c8 start=0"]
    preparing = view.seen.index("Preparing")
    assert "Running" not in view.seen[:preparing] and view.seen[preparing + 1] == "Running"
    assert view.seen[-1] == "Succeeded"
    m = read_manifest(str(tmp_path / "train"))
    assert m.num_examples == 5 and m.latent_shape == (8, 8, 1) and m.context_shape == (2, 8)
    assert "worker 0 of 1: wrote 2 parts (5 examples)" in (out / "logs" / "prepare.log").read_text()

    again = _run(exp, out, fake_python, log)
    assert again.exit_code == 0 and len(_calls(log)) == 3  # prepared, trained, evaluated: nothing again


def test_a_failed_prepare_fails_the_run_and_trains_nothing(tmp_path, fake_python):
    exp, out, log = prepared(tmp_path, tmp_path / "shards"), tmp_path / "run", tmp_path / "calls.log"
    outcome = _run(exp, out, fake_python, log, FAKE_PREPARE_FAIL="2")
    assert outcome.exit_code == 2 and _calls(log) == ["ladder_cli prepare text-image"]
    assert outcome.status.phase.value == "Failed"
    assert outcome.status.message.startswith("data preparation failed: ladder prepare exited with code 2")
    assert "failing on purpose" in outcome.messages[0]
    assert [s.phase.value for s in outcome.status.sizes] == ["Pending"]
    crashed = _run(exp, tmp_path / "run2", fake_python, log, FAKE_PREPARE_FAIL="1")
    assert crashed.exit_code == 1 and crashed.status.phase.value == "Failed"
