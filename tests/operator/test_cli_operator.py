"""`ladder operator` user errors: a clear message and exit code 2, no traceback."""

from __future__ import annotations

from ladder_cli.main import main
from ladder_testing.apiserver.fixture import free_port, write_kubeconfig


def test_missing_kubeconfig(tmp_path, capsys):
    assert main(["operator", "--kubeconfig", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no usable Kubernetes credentials" in err and "Traceback" not in err


def test_unreachable_api_server(tmp_path, capsys):
    kubeconfig = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{free_port()}")
    assert main(["operator", "--kubeconfig", str(kubeconfig)]) == 2
    assert "cannot reach the Kubernetes API server" in capsys.readouterr().err


def test_bad_site_defaults(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LADDER_OPERATOR_DEFAULTS", str(tmp_path / "missing.json"))
    kubeconfig = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{free_port()}")
    assert main(["operator", "--kubeconfig", str(kubeconfig)]) == 2
    assert "LADDER_OPERATOR_DEFAULTS" in capsys.readouterr().err
