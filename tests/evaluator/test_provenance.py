"""What every result records about how it was measured (ladder_evaluator.provenance)."""

from __future__ import annotations

import hashlib

from ladder_api.plan import expand
from ladder_api.spec import InitScheme
from ladder_evaluator import provenance
from ladder_evaluator.model import sampling_dtype
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
    prompts, stats = "sha256:" + "ab" * 32, "sha256:" + "01" * 32
    text, vae = "sha256:" + "7e" * 32, "sha256:" + "ae" * 32
    s = provenance.settings(run, sampling_dtype=sampling_dtype(run), prompts_sha256=prompts, stats=stats,
                            text_encoder_sha256=text, autoencoder_sha256=vae, clip_model="ViT-L-14")
    assert s == {
        "initialization": "compvis", "ema": "decay 0.9999, warm-up (1+n)/(10+n)",
        "samplingDtype": "float32", "textEncoder": "builtin-digits", "textEncoderWeightsSha256": text,
        "autoencoderWeightsSha256": vae, "referencePromptsSha256": prompts, "referenceStats": stats,
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
