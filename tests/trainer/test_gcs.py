"""gs:// against the fake-gcs-server emulator (ladder_testing.gcs): training data, and a whole
training run whose checkpoints (orbax: epath/gcsfs for files, tensorstore for arrays) and metrics
file live on gs://, read back through ladder_api.artifacts as `ladder run` and the report do."""

import json

import numpy as np
import pytest

from ladder_api import artifacts, exitcodes, storage
from ladder_trainer import checkpointing
from ladder_trainer.data.format import write_dataset
from ladder_trainer.data.reader import open_data

from .conftest import make_run


@pytest.fixture(scope="module")
def bucket(gcs):
    return gcs.bucket("ladder-test")


def test_dataset_on_gcs(bucket, tmp_path):
    uri = f"{bucket}/data/digits-like"
    lat = np.arange(20 * 64, dtype=np.float32).reshape(20, 8, 8, 1)
    write_dataset(uri, lat, np.ones((20, 4, 32)), np.zeros((4, 32)), autoencoder={"kind": "identity"},
                  text_encoder="builtin-digits", part_size=8)
    run = make_run(tmp_path)
    data = open_data(run.data.model_copy(update={"train_uri": uri}), run.model)
    assert len(data.source) == 20
    np.testing.assert_array_equal(data.source[13]["latents"], lat[13])


@pytest.mark.slow
def test_training_run_on_gcs(bucket, tmp_path):
    """Checkpoints (keep 2, so old steps are deleted on GCS) and metrics on gs://: the same
    parameters as the run on a local path, and re-running the finished run changes nothing. The
    storage layer sees orbax's finished steps on GCS (commit marker) exactly as orbax lists them."""
    import jax

    from ladder_trainer.main import train

    kw = dict(steps=3, checkpoint={"intervalSteps": 1, "keep": 2}, logEverySteps=1,
              lrSchedule={"kind": "constant", "warmupSteps": 0})
    remote = make_run(f"{bucket}/exp", **kw)
    local = make_run(tmp_path, **kw)
    assert remote.paths.root == f"{bucket}/exp/tiny/c16"
    assert remote.paths.checkpoints.startswith(remote.paths.root)
    assert remote.paths.metrics.startswith(remote.paths.root)
    assert train(remote, status="off") == exitcodes.OK
    assert train(local, status="off") == exitcodes.OK

    assert checkpointing.list_steps(remote.paths.checkpoints) == [2, 3]
    assert artifacts.checkpoint_steps(remote.paths.checkpoints) == [2, 3]
    assert artifacts.checkpoint_steps(local.paths.checkpoints) == [2, 3]
    for ema in (False, True):
        pr, sr = checkpointing.restore_params(remote.paths.checkpoints, ema=ema, model_config=remote.model)
        pl, sl = checkpointing.restore_params(local.paths.checkpoints, ema=ema, model_config=local.model)
        assert sr == sl == 3
        for x, y in zip(jax.tree_util.tree_leaves(pr), jax.tree_util.tree_leaves(pl), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    metrics = storage.read_text(remote.paths.metrics)
    assert [json.loads(line)["step"] for line in metrics.splitlines()] == [1, 2, 3]
    assert [r["step"] for r in artifacts.read_metrics(remote.paths.metrics)] == [1, 2, 3]

    assert train(remote, status="off") == exitcodes.OK  # finished: resumes at 3, nothing to do
    assert checkpointing.list_steps(remote.paths.checkpoints) == [2, 3]
    assert storage.read_text(remote.paths.metrics) == metrics


def test_autoencoder_weights_on_gcs(bucket, tmp_path):
    """save_autoencoder / load_autoencoder on gs:// (through a Stable Diffusion folder's vae/), equal
    to the same weights on a local path; a missing gs:// folder is a UserError naming it."""
    import jax

    from ladder_api.errors import UserError
    from ladder_trainer.models import autoencoder as ae
    from ladder_trainer.weights import load_autoencoder, save_autoencoder

    config = ae.AutoencoderConfig(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                                  scaling_factor=0.13)
    params = ae.init_params(config, seed=1)
    save_autoencoder(f"{bucket}/weights/sd/vae", config, params)
    save_autoencoder(str(tmp_path / "vae"), config, params)
    assert storage.read_bytes(f"{bucket}/weights/sd/vae/diffusion_pytorch_model.safetensors") == (
        tmp_path / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    loaded_config, loaded = load_autoencoder(f"{bucket}/weights/sd")
    assert loaded_config == config
    for x, y in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(UserError, match=f"{bucket}/weights/nothing/config.json: not found"):
        load_autoencoder(f"{bucket}/weights/nothing")
