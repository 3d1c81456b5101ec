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
    s = provenance.settings(run, sampling_dtype=sampling_dtype(run), prompts_sha256="ab" * 32,
                            stats="sha256 0123", clip_model="ViT-L-14")
    assert s == {
        "initialization": "compvis", "ema": "decay 0.9999, warm-up (1+n)/(10+n)",
        "samplingDtype": "float32", "textEncoder": "builtin-digits",
        "referencePromptsSha256": "ab" * 8, "referenceStats": "sha256 0123",
        "clipModel": "ViT-L-14", "clipPretrained": "openai",
        "clipWeightsSha256": hashlib.sha256(b"clip weights").hexdigest()[:16],
    }
    no_warmup = run.training.ema.model_copy(update={"warmup": False})
    training = run.training.model_copy(update={"initialization": InitScheme.lecun_normal, "ema": no_warmup})
    legacy = run.model_copy(update={"training": training})
    s = provenance.settings(legacy, sampling_dtype="bfloat16")
    assert (s["initialization"], s["ema"]) == ("lecun-normal", "decay 0.9999")
    assert "clipModel" not in s and "referenceStats" not in s
    assert provenance.file_digest(str(tmp_path / "missing")) is None
