"""The study's cost (ladder_api.estimate) against figures worked out by hand from the paper.

The hand computations use the paper's own numbers (Table 1's GFLOPs per forward, 500K steps at
batch 2048, 30K samples, 3 samplers x 6 step counts x 8 guidance scales) and the datasheet peaks,
not the code under test; the analytic counter is within 3% of Table 1 for c >= 96, hence rel=0.03.
"""

from __future__ import annotations

import pytest

from ladder_api.estimate import (
    Assumptions,
    cost_status,
    estimate,
    kept_checkpoints,
    spent_chip_hours,
)
from ladder_api.frozen_cost import (
    CLIP_VIT_B32,
    INCEPTION_V3_FLOPS,
    SD_DECODER,
    decoder_flops,
    vision_tower_flops,
)
from ladder_api.ladder import PAPER_TABLE
from ladder_api.loading import load_experiment, parse_experiment
from ladder_api.plan import expand
from ladder_api.spec import TrainingSpec
from ladder_api.status import SizePhase, SizeStatus
from tests.conftest import EXAMPLES

PAPER_GFLOPS = {r.width: r.gflops for r in PAPER_TABLE if r.width != 64}  # 25.3 at c = 64 is a typo
STEPS, BATCH = 500_000, 2048
V5E_PEAK, V5P_PEAK = 197e12, 459e12
# 30,000 samples in whole batches of 64: 469 batches, 30,016 images per grid point.
GENERATED = 469 * 64
GUIDED_FORWARDS = GENERATED * (4 + 6 + 8 + 10 + 20 + 50) * 2 * 8 * 3  # every scale > 1: two forwards
POINTS = 3 * 6 * 8


@pytest.fixture(scope="module")
def paper_v5e():
    return expand(load_experiment(str(EXAMPLES / "paper-v5e.yaml")))


def hours(flops: float, peak: float, mfu: float) -> float:
    return flops / (peak * mfu) / 3600


@pytest.mark.parametrize("spec", ["paper-v5e.yaml", "paper-v5p.yaml"])
def test_training_chip_hours_of_the_paper_grid_match_a_hand_computation(spec):
    plan = expand(load_experiment(str(EXAMPLES / spec)))
    peak = V5E_PEAK if "v5e" in spec else V5P_PEAK
    study = estimate(plan, Assumptions(train_mfu=0.4))
    by_width = {s.width: s for s in study.sizes}
    for width, gflops in PAPER_GFLOPS.items():
        by_hand = hours(3 * gflops * 1e9 * STEPS * BATCH, peak, 0.4)
        assert by_width[width].train_chip_hours == pytest.approx(by_hand, rel=0.03), width
    # c = 320 on v5e: 2.42e21 FLOPs, ~8,700 chip-hours at 40%; on its 128 chips, ~68 hours.
    c320 = by_width[320]
    assert c320.train_hours == pytest.approx(c320.train_chip_hours / (128 if "v5e" in spec else 32))
    # c = 768 trains on two v5litepod-256 slices (512 chips) or two v5p-128 (128 chips).
    assert by_width[768].chips == (512 if "v5e" in spec else 128)
    assert study.train_chip_hours == pytest.approx(sum(s.train_chip_hours for s in study.sizes))


def test_evaluation_of_the_paper_grid_matches_a_hand_computation(paper_v5e):
    study = estimate(paper_v5e, Assumptions(eval_mfu=0.25))
    c320 = next(s for s in study.sizes if s.width == 320)
    assert c320.checkpoints_evaluated == 1 and c320.eval.points == POINTS
    assert c320.eval.images == GENERATED * POINTS == 4_322_304
    assert GUIDED_FORWARDS == 141_195_264  # the "about 141 million guided forwards per size"
    assert c320.eval.unet == pytest.approx(GUIDED_FORWARDS * 789.3e9, rel=0.03)
    assert c320.eval.decoder == pytest.approx(4_322_304 * decoder_flops(SD_DECODER, 64))
    per_image = INCEPTION_V3_FLOPS + vision_tower_flops(CLIP_VIT_B32)
    assert c320.eval.features == pytest.approx(30_000 * POINTS * per_image)
    by_hand = hours(GUIDED_FORWARDS * 789.3e9 + 4_322_304 * 2.5e12, V5E_PEAK, 0.25)
    assert c320.eval_chip_hours == pytest.approx(by_hand, rel=0.03)
    assert c320.eval_hours == pytest.approx(c320.eval_chip_hours / 8)  # v5litepod-8-1host


def test_a_different_utilisation_scales_chip_hours_inversely(paper_v5e):
    base = estimate(paper_v5e, Assumptions(train_mfu=0.3, eval_mfu=0.1))
    fast = estimate(paper_v5e, Assumptions(train_mfu=0.6, eval_mfu=0.1))
    assert fast.train_chip_hours == pytest.approx(base.train_chip_hours / 2)
    assert fast.eval_chip_hours == pytest.approx(base.eval_chip_hours)
    slow_eval = estimate(paper_v5e, Assumptions(train_mfu=0.3, eval_mfu=0.05))
    assert slow_eval.eval_chip_hours == pytest.approx(2 * base.eval_chip_hours)
    assert base.storage_bytes == fast.storage_bytes


def test_storage_and_money_by_hand(paper_v5e):
    study = estimate(paper_v5e, Assumptions(dataset_examples=600_000_000, price_per_chip_hour=1.2))
    assert study.latent_bytes == 600_000_000 * 64 * 64 * 4 * 2  # float16 latents
    assert study.embedding_bytes == 600_000_000 * 77 * 1024 * 2  # float16 text embeddings
    c320 = next(s for s in study.sizes if s.width == 320)
    # fp32 params, EMA and Adam's two moments; checkpoint.keep 5 of the 50 saved
    assert c320.checkpoints_kept == 5
    assert c320.storage_bytes == 5 * 4 * c320.params * 4
    assert 866e6 * 0.99 < c320.params < 866e6 * 1.01
    assert study.cost() == pytest.approx(1.2 * study.chip_hours)
    assert estimate(paper_v5e).cost() is None
    one_pass = estimate(paper_v5e)
    assert one_pass.dataset_examples == STEPS * BATCH


def exp(**spec):
    return expand(parse_experiment({"metadata": {"name": "e"}, "spec": {"ladder": {"widths": [64]}, **spec}}))


def test_guidance_one_runs_one_forward_and_identity_decodes_nothing():
    grid = {"samplers": ["ddim"], "steps": [10], "numSamples": 100, "batchSize": 50, "metrics": ["adherence"]}
    guided = estimate(exp(evaluation={**grid, "guidanceScales": [2.0]})).sizes[0].eval
    plain = estimate(exp(evaluation={**grid, "guidanceScales": [1.0]})).sizes[0].eval
    assert guided.unet == pytest.approx(2 * plain.unet)
    assert plain.features == 0
    pixels = estimate(exp(evaluation={**grid, "guidanceScales": [1.0]},
                          data={"autoencoder": {"kind": "identity"}})).sizes[0].eval
    assert pixels.decoder == 0 and plain.decoder > 0


def test_checkpoints_kept_and_evaluated():
    t = TrainingSpec(steps=25, checkpoint={"intervalSteps": 10, "keep": 2}, lr_schedule={"warmupSteps": 0})
    assert kept_checkpoints(t) == [20, 25]
    training = {"steps": 25, "checkpoint": {"intervalSteps": 10, "keep": 2}, "lrSchedule": {"warmupSteps": 0}}
    final = estimate(exp(training=training)).sizes[0]
    every = estimate(exp(training=training, evaluation={"checkpoints": "all"})).sizes[0]
    assert final.checkpoints_evaluated == 1 and every.checkpoints_evaluated == 2
    assert every.eval_chip_hours == pytest.approx(2 * final.eval_chip_hours)


def test_spent_follows_the_sizes_progress_in_whole_percent(paper_v5e):
    study = estimate(paper_v5e, Assumptions(price_per_chip_hour=2.0))
    c64, c96 = study.sizes[0], study.sizes[1]
    sizes = [
        SizeStatus(width=64, phase=SizePhase.succeeded, step=STEPS, total_steps=STEPS),
        SizeStatus(width=96, phase=SizePhase.training, step=125_000 + 1, total_steps=STEPS),
        SizeStatus(width=128, phase=SizePhase.pending),
    ]
    expected = c64.chip_hours + 0.25 * c96.train_chip_hours
    assert spent_chip_hours(study, sizes) == pytest.approx(expected)
    block = cost_status(study, sizes)
    assert block.spent_chip_hours == pytest.approx(expected, rel=1e-3)
    assert block.chip_hours == pytest.approx(study.chip_hours, rel=1e-3)
    assert block.cost == pytest.approx(2.0 * study.chip_hours, rel=1e-3)
    evaluating = [SizeStatus(width=96, phase=SizePhase.evaluating, step=STEPS, total_steps=STEPS)]
    assert spent_chip_hours(study, evaluating) == pytest.approx(c96.train_chip_hours)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"train_mfu": 0}, "train_mfu"), ({"eval_mfu": 1.5}, "eval_mfu"),
     ({"price_per_chip_hour": -1}, "price_per_chip_hour"), ({"dataset_examples": 0}, "dataset_examples")],
)
def test_impossible_assumptions_are_refused(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Assumptions(**kwargs)


def test_kept_checkpoints_equal_listing_every_save():
    """Counted without listing 500K/interval saves; the same as listing them."""
    for steps in range(1, 30):
        for interval in range(1, 32):
            for keep in (1, 2, 5):
                t = TrainingSpec(steps=steps, checkpoint={"intervalSteps": interval, "keep": keep},
                                 lr_schedule={"warmupSteps": 0})
                listed = sorted(set(range(interval, steps + 1, interval)) | {steps})[-keep:]
                assert kept_checkpoints(t) == listed, (steps, interval, keep)
