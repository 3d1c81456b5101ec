"""The entry point: bad input exits USER_ERROR with a message, before any compute."""

import http.server
import subprocess
import sys
import threading

import pytest

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


class _Unavailable(http.server.BaseHTTPRequestHandler):
    """A storage endpoint in an outage: every request gets 503 Service Unavailable."""

    def _reply(self):
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = _reply  # noqa: N815 - http.server dispatches on these names

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_a_storage_outage_exits_42_for_a_restart(tmp_path):
    """gs:// data behind an endpoint answering 503 (GCS's emulator API, in an outage): after the
    client's own retries (about 40 s) the trainer exits RESTARTABLE, not USER_ERROR ("cannot
    read"), so the JobSet restarts instead of failing the experiment."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        run = make_run(tmp_path)
        run = run.model_copy(update={"data": run.data.model_copy(update={"train_uri": "gs://ladder-x/data"})})
        out = subprocess.run(
            [sys.executable, "-m", "ladder_trainer", "--config", write_run(run, tmp_path / "run.json")],
            env=trainer_env(STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{server.server_port}"),
            capture_output=True, text=True, timeout=300,
        )
    finally:
        server.shutdown()
    assert out.returncode == exitcodes.RESTARTABLE, out.stderr[-3000:]
    assert "infrastructure fault" in out.stderr and "503" in out.stderr
