"""spec.data.prepare on a cluster: the real operator process against the local API server (which
checks the prepare JobSet against the JobSet schema), the test playing the JobSet controller and
the prepare pods. The pods are real: each runs the JobSet's own container command (`ladder
prepare text-image` on the run config from the operator's ConfigMap) with its worker index, on
real WebDataset shards and a small real AutoencoderKL; only the container runtime is left out.

Each test starts its own operator (one is SIGKILLed mid-preparation), so this module does not use
the module-wide `operator_process`.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from ladder_api import storage
from tests.operator.harness import OperatorProcess, tiny, wait_for, with_changes
from tests.prepare.conftest import AE, DiesInPart, KilledError, webdataset_shards

COUNTS = (4, 3, 5)  # examples per tar shard: one part each


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """WebDataset shards and a small AutoencoderKL in diffusers' layout."""
    from ladder_trainer.models import autoencoder as ae
    from ladder_trainer.weights import save_autoencoder

    root = tmp_path_factory.mktemp("prepare-inputs")
    shards = webdataset_shards(root / "shards", counts=COUNTS, bad=False)
    config = ae.AutoencoderConfig(**AE)
    save_autoencoder(str(root / "vae"), config, ae.init_params(config, seed=3))
    return shards, root / "vae"


def prepared_experiment(ns: str, name: str, inputs, train_uri: str, workers: int = 2) -> dict:
    shards, vae = inputs  # the operator never reads them: only the pods do
    return with_changes(
        tiny(ns, name),
        **{
            "ladder.latentChannels": 4,
            "data.trainUri": train_uri,
            "data.autoencoder": {"kind": "sd-vae", "weightsUri": str(vae), "scalingFactor": 0.5},
            "data.prepare": {"webdataset": [str(shards)], "workers": workers, "batchSize": 2},
        },
    )


def run_pod(cluster, name: str, index: int, tmp_path, monkeypatch, dies: tuple[int, int] | None = None):
    """What pod `index` of the prepare JobSet does: its container command, its config file from
    the ConfigMap, JOB_COMPLETION_INDEX as the Indexed Job sets it."""
    from ladder_cli import cmd_prepare
    from ladder_cli.main import main as ladder

    js = cluster.jobsets(name)[f"{name}-prepare"]
    pod = js["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:5] == ["python", "-m", "ladder_cli", "prepare", "text-image"]
    config = container["command"][5]
    (cm,) = [c for c in cluster.objects("/api/v1/namespaces/{ns}/configmaps")
             if c["metadata"]["name"] == f"{name}-runs"]
    local_config = tmp_path / config.rsplit("/", 1)[1]
    local_config.write_text(cm["data"][local_config.name])
    for e in container["env"]:
        if "value" in e:
            monkeypatch.setenv(e["name"], e["value"])
    monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
    real = cmd_prepare.make_source
    if dies is not None:
        monkeypatch.setattr(cmd_prepare, "make_source", lambda args: DiesInPart(real(args), *dies))
    try:
        return ladder(["prepare", "text-image", str(local_config), *container["command"][6:]])
    finally:
        monkeypatch.setattr(cmd_prepare, "make_source", real)


def training_jobsets(cluster, name: str) -> set[str]:
    return {n for n in cluster.jobsets(name) if not n.endswith("-prepare")}


def test_prepare_failure_fails_the_experiment_and_a_prepared_set_is_not_made_again(
    apiserver, cluster, tmp_path, gcs
):
    proc = OperatorProcess(apiserver.kubeconfig, tmp_path / "operator.log").start()
    try:
        unread = (tmp_path / "shards", tmp_path / "vae")
        bucket = gcs.bucket("prep-fails")  # pods read and write only gs:// (the operator refuses paths)
        exp = prepared_experiment(cluster.ns, "prep-fails", unread, f"{bucket}/train")
        cluster.create(exp)
        wait_for("the prepare JobSet", lambda: "prep-fails-prepare" in cluster.jobsets("prep-fails"))
        wait_for("Preparing", lambda: cluster.status("prep-fails").get("phase") == "Preparing")
        cluster.set_jobset("prep-fails-prepare", "failed", reason="FailedJobs",
                           message="job prep-fails-prepare-prepare-0 failed: exit code 2")
        wait_for("Failed", lambda: cluster.status("prep-fails").get("phase") == "Failed")
        status = cluster.status("prep-fails")
        assert status["message"] == ("data preparation failed: FailedJobs: job prep-fails-prepare-prepare-0 "
                                     "failed: exit code 2 (JobSet prep-fails-prepare)")
        degraded = cluster.condition("prep-fails", "Degraded")
        assert (degraded["status"], degraded["reason"]) == ("True", "PrepareFailed")
        assert training_jobsets(cluster, "prep-fails") == set()

        # data.trainUri already prepared (its manifest is there): nothing to prepare, training starts
        storage.write_text(f"{bucket}/ready/manifest.json", "{}")
        cluster.create(prepared_experiment(cluster.ns, "prep-ready", unread, f"{bucket}/ready"))
        wait_for("training starts", lambda: training_jobsets(cluster, "prep-ready") == {"prep-ready-c32",
                                                                                       "prep-ready-c64"})
        assert "prep-ready-prepare" not in cluster.jobsets("prep-ready")
        wait_for("the status without Preparing",
                 lambda: cluster.status("prep-ready").get("phase") in ("Pending", "Running"))
    finally:
        proc.stop()


@pytest.mark.slow
def test_restart_mid_prepare_gives_no_duplicate_or_missing_examples(
    apiserver, cluster, inputs, tmp_path, monkeypatch, gcs
):
    """Worker 1 dies inside its part and the operator is SIGKILLed while the JobSet runs; the
    restarted operator creates nothing twice and starts no training; the JobSet restarts the pods;
    the data equals a one-worker preparation of the same shards, and only then training starts."""
    from ladder_trainer.data.format import read_manifest, read_marker

    train = f"{gcs.bucket('prep')}/train"  # pods read and write only gs:// (the operator refuses paths)
    proc = OperatorProcess(apiserver.kubeconfig, tmp_path / "operator.log").start()
    try:
        cluster.create(prepared_experiment(cluster.ns, "prep", inputs, train))
        wait_for("the prepare JobSet", lambda: "prep-prepare" in cluster.jobsets("prep"))
        wait_for("Preparing", lambda: cluster.status("prep").get("phase") == "Preparing")
        uid = cluster.jobsets("prep")["prep-prepare"]["metadata"]["uid"]

        assert run_pod(cluster, "prep", 0, tmp_path, monkeypatch) == 0  # parts 0 and 2
        with pytest.raises(KilledError):
            run_pod(cluster, "prep", 1, tmp_path, monkeypatch, dies=(1, 2))  # part 1, after 2 items
        assert read_marker(train, "part-000001") is None and not storage.exists(f"{train}/manifest.json")

        proc.kill()
        proc.start()
        # An edit the restarted operator must answer (observedGeneration): proof that it decided
        # with the half-done preparation in view, not that it has not looked yet.
        generation = cluster.edit("prep", **{"scheduling.maxRestarts": 5})["metadata"]["generation"]
        wait_for("the restarted operator's pass",
                 lambda: cluster.status("prep").get("observedGeneration") == generation)
        assert set(cluster.jobsets("prep")) == {"prep-prepare"}
        assert cluster.jobsets("prep")["prep-prepare"]["metadata"]["uid"] == uid
        assert cluster.status("prep")["phase"] == "Preparing"

        for index in (0, 1):  # the JobSet restarts its pods: committed parts are skipped
            assert run_pod(cluster, "prep", index, tmp_path, monkeypatch) == 0
        cluster.set_jobset("prep-prepare", "completed")
        wait_for("training starts", lambda: training_jobsets(cluster, "prep") == {"prep-c32", "prep-c64"})
    finally:
        proc.stop()

    m = read_manifest(train)
    assert [p.num_examples for p in m.parts] == list(COUNTS) and m.num_examples == sum(COUNTS)
    clean = tmp_path / "clean"
    monkeypatch.setenv("LADDER_PREPARE_WORKERS", "1")
    from ladder_cli.main import main as ladder

    config = next(tmp_path.glob("prep-c*.json"))
    shards, _ = inputs
    assert ladder(["prepare", "text-image", str(config), "--webdataset", str(shards), "--output", str(clean),
                   "--num-workers", "1", "--worker-index", "0", "--batch-size", "2"]) == 0
    for a, b in zip(m.parts, read_manifest(str(clean)).parts, strict=True):
        got = np.load(io.BytesIO(storage.read_bytes(storage.join(train, a.path))))
        np.testing.assert_array_equal(got, np.load(clean / b.path))
