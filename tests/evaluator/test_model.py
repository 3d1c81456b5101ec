"""The evaluator's model-side choices that are pure functions of the run: how many rows one U-Net
forward of the sampling loop runs (ladder_evaluator.model.forward_rows)."""

from __future__ import annotations

from ladder_api.loading import load_experiment
from ladder_api.plan import expand
from ladder_evaluator.model import CPU_SLICE_BYTES, forward_rows
from tests.conftest import EXAMPLES


def model_of(example: str, **ladder):
    exp = load_experiment(str(EXAMPLES / example))
    exp.spec.ladder = exp.spec.ladder.model_copy(update=ladder)
    return expand(exp).runs[0].model


def test_a_cpu_runs_the_paper_u_net_in_slices_and_accelerators_the_whole_batch():
    paper = model_of("paper-v5e.yaml")  # 64x64 latents, attention from level 0: 4,096 tokens
    per_row = 4 * 8 * 4096 * 1024  # 8 heads, 4,096 queries in chunks of 1,024 against 4,096 keys
    assert forward_rows(paper, "cpu", 1) == max(1, CPU_SLICE_BYTES // per_row)
    assert forward_rows(paper, "cpu", 8) == 8 * forward_rows(paper, "cpu", 1)  # the same share per device
    assert forward_rows(paper, "tpu", 8) is None and forward_rows(paper, "gpu", 1) is None


def test_small_attention_maps_are_not_sliced_in_practice():
    """The quickstart's attention is at level 1 of 8x8 latents (16 tokens): a slice would hold
    hundreds of thousands of rows, so every real batch runs whole."""
    quick = model_of("quickstart.yaml")
    assert forward_rows(quick, "cpu", 1) == CPU_SLICE_BYTES // (4 * 4 * 16 * 16)
    assert forward_rows(model_of("quickstart.yaml", attention_levels=[]), "cpu", 1) is None
