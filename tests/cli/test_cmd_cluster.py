"""`ladder status --experiment` and `ladder report --experiment | <storage root>`: a cluster
experiment read through the kubeconfig (the local API server here) and its storage, reported as a
`ladder run` directory is."""

from __future__ import annotations

import asyncio

import pytest

from ladder_api import storage
from ladder_cli.main import main
from ladder_testing.apiserver.fixture import running_apiserver
from tests.operator.harness import InProcess, results_for, tiny


@pytest.fixture(scope="module")
def bucket(gcs):
    """The experiments' storage: a bucket of the GCS emulator (the operator takes gs:// only)."""
    return gcs.bucket("ladder-cli-tests")


@pytest.fixture
def cluster_experiment(tmp_path, bucket):
    """tiny on the local API server, reconciled by the operator's Controller, one size evaluated
    (one of its measurements came out NaN)."""
    with running_apiserver(tmp_path / "api") as api:
        world = InProcess(api, bucket)
        exp = tiny(world.cluster.ns)
        name = exp["metadata"]["name"]
        world.cluster.create(exp)
        asyncio.run(world.deliver())
        results = results_for(32, 600, 200.0)
        results[0] = {**results[0], "value": float("nan")}
        world.evaluate(name, 32, results)
        asyncio.run(world.deliver())
        asyncio.run(world.kube.close())
        yield api, world.cluster, name


def test_status_of_a_cluster_experiment(cluster_experiment, capsys):
    api, cluster, name = cluster_experiment
    args = ["--experiment", name, "-n", cluster.ns, "--kubeconfig", str(api.kubeconfig)]
    assert main(["status", *args]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].split()[:3] == [name, "Running", "0/3"]
    row = next(ln for ln in lines if ln.startswith("c32 "))
    assert "4/36 (1 failed)" in row
    assert "Frontier" in out and storage.join(cluster.output_uri, name) in out
    assert main(["status", *args, "--json"]) == 0
    assert '"measured": "4/108"' in capsys.readouterr().out


def test_report_of_a_cluster_experiment_equals_the_report_of_its_storage_root(cluster_experiment, tmp_path):
    api, cluster, name = cluster_experiment
    args = ["--experiment", name, "-n", cluster.ns, "--kubeconfig", str(api.kubeconfig)]
    assert main(["report", *args, "-o", str(tmp_path / "by-name")]) == 0
    root = storage.join(cluster.output_uri, name)
    assert main(["report", root, "-o", str(tmp_path / "by-root")]) == 0
    by_name = (tmp_path / "by-name" / "report.md").read_text()
    by_root = (tmp_path / "by-root" / "report.md").read_text()
    assert "3 measurements recorded (1 more failed" in by_name and "## Failed measurements" in by_name
    drop = ("Experiment **", "Generated", "generated")  # the status line: the root has no status
    assert [ln for ln in by_name.splitlines() if not ln.startswith(drop)] == \
        [ln for ln in by_root.splitlines() if not ln.startswith(drop)]


def test_the_source_must_be_one_thing(tmp_path, capsys):
    assert main(["status"]) == 2
    assert "give a directory or --experiment NAME" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--experiment", "x"]) == 2
    with running_apiserver(tmp_path / "api") as api:
        assert main(["status", "--experiment", "nope", "--kubeconfig", str(api.kubeconfig)]) == 2
        assert "ScalingExperiment default/nope not found" in capsys.readouterr().err
