"""Sampling and its metrics on one machine are bit-identical from run to run (docs/determinism.md):
the noise and the prompts of sample i come from the spec's seeds, so the same checkpoint gives
the same images, bit for bit, and the same FID. Two samplings of one grid point in one process,
with a sampler that also draws noise inside its loop (DDPM): no tolerance."""

from __future__ import annotations

import jax
import numpy as np

from ladder_api.grid import GridPoint
from ladder_api.plan import expand
from ladder_evaluator import evaluate, model
from ladder_evaluator import prompts as prompts_mod
from ladder_evaluator.metrics import fid
from ladder_trainer import diffusion
from ladder_trainer.data import digits
from ladder_trainer.data_mesh import data_mesh
from ladder_trainer.models import init_params
from tests.evaluator.test_cli import _experiment


def _sample(run, params, prompts, point):
    ac = diffusion.alphas_cumprod(run.training.noise_schedule)
    placed = evaluate.place_params(params, data_mesh(batch_size=run.evaluation.batch_size))
    batches = list(evaluate.generate(run, model.make_apply(run), placed, point, prompts, ac))
    return np.concatenate([b[0] for b in batches])


def test_two_samplings_of_one_checkpoint_are_bit_identical(tmp_path, digits_extractor):
    run = expand(_experiment(tmp_path, numSamples=12, batchSize=6)).runs[0]
    params = init_params(run.model, jax.random.key(0))
    prompts = prompts_mod.load(run)
    point = GridPoint("ddpm", 2, 3.0)
    a, b = _sample(run, params, prompts, point), _sample(run, params, prompts, point)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:6], a[6:]), "each batch has its own noise"
    ref = fid.reference_from_images(digits.load("test").images[:100], digits_extractor)
    assert fid.fid(a, ref, digits_extractor) == fid.fid(b, ref, digits_extractor)
