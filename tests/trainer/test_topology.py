"""Checkpoints move between meshes: a size trained on 8 devices sharded {data: 2, fsdp: 4} is
evaluated on 1 and on 2 devices (as every cluster run is: a 64-chip training slice, a 1- or
8-chip evaluation host), and training resumes on another mesh (sharding is not in the recipe).

Everything runs through the entry points in subprocesses: the fake device count comes from
XLA_FLAGS, fixed when JAX starts.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ladder_api import artifacts
from ladder_trainer import checkpointing

from .conftest import ONE_LEVEL, make_run, trainer_env, write_run

SPEC = {
    "resources": {"slices": [{"sliceType": "v5litepod-8"}]},
    "data": {"referenceSet": {"name": "digits-test", "uri": "builtin:digits-test"}},
    "evaluation": {"samplers": ["ddim"], "steps": [2], "guidanceScales": [1.0], "numSamples": 4,
                   "batchSize": 4, "metrics": ["adherence"], "fidFeatures": "digits-classifier"},
}


def _devices(n: int) -> dict:
    return trainer_env(f"--xla_force_host_platform_device_count={n}")


def _run(module: str, *args, devices: int):
    return subprocess.run([sys.executable, "-m", module, *args], env=_devices(devices),
                          capture_output=True, text=True, timeout=900)


def _run_config(root, **training):
    return make_run(root, ladder=ONE_LEVEL, spec=SPEC, checkpoint={"intervalSteps": 2, "keep": 3}, **training)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("topology")
    run = _run_config(root / "out", steps=2, sharding={"data": 2, "fsdp": 4})
    config = write_run(run, root / "run.json")
    out = _run("ladder_trainer", "--config", config, "--status", "off", devices=8)
    assert out.returncode == 0, out.stderr[-3000:]
    assert checkpointing.list_steps(run.paths.checkpoints) == [2]
    return root, run, config


@pytest.mark.slow
def test_evaluator_restores_an_8_device_checkpoint_on_1_and_2_devices(trained):
    root, run, config = trained
    results = {}
    for n in (1, 2):
        path = root / f"results-{n}"
        out = _run("ladder_evaluator", "--config", config, "--checkpoint", run.paths.checkpoints,
                   "--results", str(path), "--status", "file", "--no-progress", devices=n)
        assert out.returncode == 0, f"{n} device(s):\n{out.stderr[-3000:]}"
        results[n] = {i: r.value for i, r in artifacts.ResultsStore(str(path)).existing().items()}
    assert list(results[1]) == ["c16-s2-ddim-n2-g1-adherence"]
    assert results[1] == results[2]  # the same weights, whichever devices hold them


@pytest.mark.slow
def test_training_resumes_on_another_mesh(trained, tmp_path):
    _, saved, _ = trained
    run = _run_config(tmp_path, steps=4, sharding={"data": -1, "fsdp": 2})
    shutil.copytree(saved.paths.checkpoints, run.paths.checkpoints)
    out = _run("ladder_trainer", "--config", write_run(run, tmp_path / "run.json"), "--status", "off",
               devices=4)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resumed from {run.paths.checkpoints} step 2" in out.stderr
    assert checkpointing.list_steps(run.paths.checkpoints) == [2, 4]
    records = [json.loads(line) for line in Path(run.paths.metrics).read_text().splitlines()]
    assert [r["step"] for r in records] == [4] and 0 < records[0]["loss"] < 10
