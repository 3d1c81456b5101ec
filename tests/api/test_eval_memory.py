"""An eval slice too small to decode a batch of evaluation.batchSize is refused at validation,
naming the field and the batch that would fit (ladder_api.eval_memory)."""

from ladder_api.eval_memory import SD_DECODER, decode_memory_problems, decode_plan, decoder_params
from ladder_api.loading import load_experiment
from ladder_api.validation import Target, problems


def _paper(**evaluation):
    exp = load_experiment("examples/paper-v5p.yaml")
    spec = exp.spec.model_copy(update={
        "evaluation": exp.spec.evaluation.model_copy(update=evaluation),
        "resources": exp.spec.resources.model_copy(update={
            "eval_slice": exp.spec.resources.eval_slice.model_copy(update={"slice_type": "v5litepod-4"})}),
    })
    return exp.model_copy(update={"spec": spec})


def test_sd_decoder_parameters_are_diffusers_count():
    assert decoder_params(SD_DECODER) == 49_490_199  # XLA's argument size of the real decoder / 4


def test_a_batch_the_eval_slice_cannot_decode_is_refused_naming_the_field_and_a_batch_that_fits():
    exp = _paper(batch_size=256, sampling_dtype="bfloat16")
    found = [p for p in problems(exp, Target.local) if "decoding" in p.message]
    assert found and all(p.field == "spec.evaluation.batchSize" for p in found)
    assert "64 images on each of the 4 chips of v5litepod-4" in found[0].message
    fits = min(int(p.message.split("use evaluation.batchSize ")[1].split()[0]) for p in found)
    assert 0 < fits < 256
    smaller = _paper(batch_size=fits, sampling_dtype="bfloat16")
    assert all(decode_plan(smaller.spec, w).fits for w in smaller.spec.ladder.widths)
    assert not decode_plan(_paper(batch_size=fits + 4, sampling_dtype="bfloat16").spec, 768).fits


def test_weights_that_alone_overflow_a_chip_name_the_eval_slice():
    exp = _paper(batch_size=4, sampling_dtype="float32")  # the 5B model in float32: 18 GiB
    found = decode_memory_problems(exp.spec)
    assert [f for f, _ in found] == ["spec.resources.evalSlice"]
    assert "width 768" in found[0][1] and "parameters alone do not fit" in found[0][1]


def test_the_shipped_examples_fit_their_eval_slices():
    for name in ("paper-v5e.yaml", "paper-v5p.yaml", "latent-local.yaml", "quickstart.yaml"):
        assert decode_memory_problems(load_experiment(f"examples/{name}").spec) == [], name
