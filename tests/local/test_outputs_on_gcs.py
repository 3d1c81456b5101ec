"""`ladder run` with spec.storage.outputUri on gs:// (the fake-gcs-server emulator) and stand-in
pods (fake_pods.py, which write through the storage layer as the real pods do): the outputs land
in the bucket, the runner's state stays local, `ladder status` and `ladder report` read the
outputs back from the bucket, and `-o DIR` still wins."""

from __future__ import annotations

import json

import pytest
import yaml

from ladder_api import artifacts, storage
from ladder_cli.main import main
from tests.local.conftest import tiny_experiment


def _spec_file(tmp_path, output_uri: str | None):
    doc = tiny_experiment().to_wire()
    doc["spec"]["ladder"]["widths"] = [8]
    if output_uri:
        doc["spec"]["storage"] = {"outputUri": output_uri}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def bucket(gcs, request):
    return gcs.bucket(f"outputs-{request.node.name[-20:].lower().replace('_', '-').strip('-')}")


def test_outputs_go_to_the_bucket_and_status_and_report_read_them(tmp_path, monkeypatch, capsys, bucket,
                                                                   fake_python):
    monkeypatch.chdir(tmp_path)
    spec = _spec_file(tmp_path, f"{bucket}/studies/")
    assert main(["run", spec, "--python", fake_python, "--plain", "--no-report"]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[:3]
    state = tmp_path / "ladder-runs" / "tiny"
    outputs = f"{bucket}/studies/tiny"
    assert head[1] == (f"  outputs (checkpoints, metrics, results, samples): {outputs} "
                       "(from spec.storage.outputUri)")
    assert str(state) in head[2] and "runner state" in head[2]

    size = f"{outputs}/c8"
    assert artifacts.checkpoint_steps(f"{size}/checkpoints") == [2, 4, 6]
    assert [r["step"] for r in artifacts.read_metrics(f"{size}/metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert len(artifacts.read_results(f"{size}/results")) == 16
    # the runner's own files are local; none of the outputs are
    assert (state / "status.json").is_file() and (state / "configs" / "tiny-c8.json").is_file()
    assert (state / "c8" / "logs" / "train.log").is_file()
    assert sorted(p.name for p in (state / "c8").iterdir()) == ["logs"]
    config = json.loads((state / "configs" / "tiny-c8.json").read_text())
    assert config["paths"]["results"] == f"{size}/results"

    assert main(["status", str(state)]) == 0
    shown = capsys.readouterr().out
    assert "Succeeded" in shown and "16/16" in shown and "Frontier" in shown
    assert main(["report", str(state)]) == 0
    assert "report:" in capsys.readouterr().out
    md = (state / "report.md").read_text()
    assert "16 measurements recorded" in md and "## The frontier" in md

    # running again finds everything in the bucket: nothing is trained or measured twice
    before = storage.list_files(outputs)
    assert main(["run", spec, "--python", fake_python, "--plain", "--no-report"]) == 0
    assert "c8: done: 16 measurements recorded" in capsys.readouterr().out
    assert storage.list_files(outputs) == before
    assert (state / "c8" / "logs" / "train.log").read_text().count("=== ladder run") == 1

    # -o wins over the spec's outputUri, and says so
    assert main(["run", spec, "-o", str(tmp_path / "here"), "--python", fake_python, "--plain",
                 "--no-report"]) == 0
    head = capsys.readouterr().out.splitlines()[:3]
    assert head[1] == f"  outputs and runner state: {tmp_path / 'here'} (from -o)"
    assert head[2] == f"  spec.storage.outputUri {bucket}/studies/ is not used: -o comes first"
    assert (tmp_path / "here" / "c8" / "checkpoints" / "6").is_dir()
    assert len(artifacts.read_results(str(tmp_path / "here" / "c8" / "results"))) == 16
    assert storage.list_files(outputs) == before


def test_a_missing_bucket_stops_before_anything_starts(tmp_path, monkeypatch, capsys, gcs, fake_python):
    monkeypatch.chdir(tmp_path)
    spec = _spec_file(tmp_path, "gs://no-such-bucket/studies")
    assert main(["run", spec, "--python", fake_python, "--plain"]) == 2
    err = capsys.readouterr().err
    assert "gs://no-such-bucket/studies/tiny: the bucket gs://no-such-bucket does not exist" in err
    assert "Traceback" not in err
    assert not (tmp_path / "ladder-runs" / "tiny" / "configs").exists()
