"""The in-pod checks of hack/tpu-smoke.sh (ladder_trainer.smoke), as far as they run without a TPU:
the bandwidth probe over loopback, and each check reporting failure where its condition fails."""

from __future__ import annotations

import json
import threading

from ladder_trainer import smoke


def test_bandwidth_probe_measures_a_real_transfer():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready, result = threading.Event(), []
    server = threading.Thread(target=lambda: result.append(smoke.serve(port, 2, ready)))
    server.start()
    ready.wait(10)
    smoke.send("127.0.0.1", port, streams=2, seconds=0.5)
    server.join(30)
    assert result and result[0] > 0.01  # Gbit/s; loopback moves far more than 10 Mbit/s


def test_devices_check_fails_without_tpus(capsys):
    assert smoke.check_devices(4) is False  # this machine's JAX has CPU devices only
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["check"] == "devices" and line["ok"] is False and line["platform"] == "cpu"


def test_memlock_and_identity_report_one_json_line_each(capsys):
    smoke.check_memlock(0.001)
    smoke.check_identity()
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [x["check"] for x in lines] == ["memlock", "identity"]
    assert lines[0]["mlock_bytes"] > 0 and isinstance(lines[0]["mlock_ok"], bool)
    assert lines[1]["ok"] is False or lines[1]["uid"] == 1000  # passes only as the pods' uid
