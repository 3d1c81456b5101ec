"""What every result records about how it was measured (ladder_evaluator.provenance)."""

from __future__ import annotations

import hashlib

import numpy as np

from ladder_api.plan import expand
from ladder_api.spec import InitScheme
from ladder_evaluator import provenance
from ladder_evaluator.model import sampling_dtype
from ladder_evaluator.prompts import Prompts
from tests.local.conftest import tiny_experiment


def _run(**evaluation):
    return expand(tiny_experiment(**evaluation)).runs[0]


def test_sampling_dtype_is_the_trainings_unless_the_evaluation_says():
    run = _run()
    assert sampling_dtype(run) == run.training.compute_dtype.value == "bfloat16"
    assert sampling_dtype(_run(samplingDtype="float32")) == "float32"


def test_settings_name_the_schemes_the_dtype_and_the_inputs_by_content(tmp_path):
    weights = tmp_path / "clip.safetensors"
    weights.write_bytes(b"clip weights")
    run = _run(samplingDtype="float32", clipWeightsUri=str(weights), clipModel="ViT-L-14",
               clipPretrained="openai")
    prompts = Prompts((), np.zeros((0, 2, 8)), np.zeros((2, 8)), None, None, sha256="sha256:" + "ab" * 32,
                      text_encoder_sha256="sha256:" + "7e" * 32)
    stats, vae = "sha256:" + "01" * 32, "sha256:" + "ae" * 32
    s = provenance.settings(run, sampling_dtype=sampling_dtype(run), prompts=prompts, stats=stats,
                            autoencoder_sha256=vae, clip_model="ViT-L-14")
    assert s == {
        "initialization": "compvis", "ema": "decay 0.9999, warm-up (1+n)/(10+n)",
        "samplingDtype": "float32", "textEncoder": "builtin-digits",
        "textEncoderWeightsSha256": prompts.text_encoder_sha256, "autoencoderWeightsSha256": vae,
        "referencePromptsSha256": prompts.sha256, "referenceStats": stats,
        "clipModel": "ViT-L-14", "clipPretrained": "openai",
        "clipWeightsSha256": "sha256:" + hashlib.sha256(b"clip weights").hexdigest(),
    }
    no_warmup = run.training.ema.model_copy(update={"warmup": False})
    training = run.training.model_copy(update={"initialization": InitScheme.lecun_normal, "ema": no_warmup})
    legacy = run.model_copy(update={"training": training})
    s = provenance.settings(legacy, sampling_dtype="bfloat16")
    assert (s["initialization"], s["ema"]) == ("lecun-normal", "decay 0.9999")
    unset = {"clipModel", "referenceStats", "textEncoderWeightsSha256", "autoencoderWeightsSha256"}
    assert not unset & set(s)
    assert provenance.file_digest(str(tmp_path / "missing")) is None


def test_file_digest_is_the_form_prepare_records_locally_and_on_gcs(tmp_path, gcs):
    """One hash form everywhere: what `ladder prepare` writes and data.*.hash pins."""
    from ladder_api import storage
    from ladder_trainer.weights.hashing import weights_hash

    local = tmp_path / "stats.npz"
    local.write_bytes(b"statistics")
    remote = gcs.bucket("provenance-test") + "/stats.npz"
    storage.write_bytes(remote, b"statistics")
    want = "sha256:" + hashlib.sha256(b"statistics").hexdigest()
    assert provenance.file_digest(str(local)) == provenance.file_digest(remote) == want
    assert want == weights_hash([str(local)])
    local.write_bytes(b"other statistics")  # a changed file is hashed again, not served from cache
    changed = "sha256:" + hashlib.sha256(b"other statistics").hexdigest()
    assert provenance.file_digest(f"file://{local}") == changed


def test_recorded_settings_do_not_name_a_result():
    """Result identity of existing runs: an id comes from the grid point alone (and the evaluation
    hash from the evaluation spec), so what settings record, or under which keys, re-runs nothing."""
    from ladder_api.grid import GridPoint
    from ladder_evaluator.evaluate import results_for

    run, point, values = _run(), GridPoint("ddim", 2, 3.0), {"adherence": {"value": 0.5}}
    old = results_for(run, 10, point, values, {"promptsHash": "sha256:" + "ab" * 32})
    new = results_for(run, 10, point, values, {"referencePromptsSha256": "sha256:" + "ab" * 32})
    assert [r.id for r in old] == [r.id for r in new] == [f"c{run.width}-s10-ddim-n2-g3-adherence"]
    assert old[0].settings != new[0].settings


def test_the_text_encoder_weights_that_embedded_the_prompts_reach_every_result(tmp_path):
    """Issue 16: the prompts file `ladder prepare reference` writes names its encoder's weights;
    loaded, they are in the settings every result of the evaluation carries."""
    import json

    from ladder_api.grid import GridPoint
    from ladder_evaluator import prompts as prompts_mod
    from ladder_evaluator.evaluate import results_for

    weights = "sha256:" + "5e" * 32
    path = tmp_path / "prompts.npz"
    np.savez(path, captions=np.array([f"digit {i}" for i in range(10)]),
             context=np.ones((10, 2, 8), np.float32), uncond=np.zeros((2, 8), np.float32),
             meta=np.array(json.dumps({"text_encoder": {"name": "builtin-digits", "hash": weights}})))
    run = _run()
    run = run.model_copy(update={"data": run.data.model_copy(update={
        "reference_set": run.data.reference_set.model_copy(update={"uri": str(path)}),
        "train_uri": str(tmp_path / "no-training-data-here")})})
    loaded = prompts_mod.load(run)
    recorded = provenance.settings(run, sampling_dtype="float32", prompts=loaded)
    [result] = results_for(run, 10, GridPoint("ddim", 2, 3.0), {"adherence": {"value": 0.5}}, recorded)
    assert result.settings["textEncoder"] == "builtin-digits"
    assert result.settings["textEncoderWeightsSha256"] == weights
    assert result.settings["referencePromptsSha256"] == loaded.sha256 == "sha256:" + hashlib.sha256(
        path.read_bytes()).hexdigest()
