"""The entry point: bad input exits USER_ERROR with a message, before any compute."""

import subprocess
import sys

from ladder_api import exitcodes

from .conftest import make_run, trainer_env, write_run


def _run(*args):
    return subprocess.run([sys.executable, "-m", "ladder_trainer", *args], env=trainer_env(),
                          capture_output=True, text=True, timeout=120)


def test_invalid_config_exits_2_naming_the_field(tmp_path):
    bad = tmp_path / "bad.json"
    doc = make_run(tmp_path).model_dump(mode="json", by_alias=True)
    doc["training"]["globalBatch"] = -3
    import json

    bad.write_text(json.dumps(doc))
    out = _run("--config", str(bad))
    assert out.returncode == exitcodes.USER_ERROR
    assert "training.globalBatch" in out.stderr and "Traceback" not in out.stderr


def test_missing_config_and_unreadable_data_exit_2(tmp_path):
    out = _run("--config", str(tmp_path / "nope.json"))
    assert out.returncode == exitcodes.USER_ERROR and "cannot read" in out.stderr
    run = make_run(tmp_path)
    run = run.model_copy(update={"data": run.data.model_copy(update={"train_uri": str(tmp_path / "none")})})
    out = _run("--config", write_run(run, tmp_path / "run.json"))
    assert out.returncode == exitcodes.USER_ERROR, out.stderr[-2000:]
    assert "data.trainUri" in out.stderr and "no manifest.json" in out.stderr
