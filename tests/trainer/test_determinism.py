"""Training on one machine is bit-identical from run to run (docs/determinism.md): the same spec
(seeds included) gives the same initial parameters, data order, noise, losses and parameters,
bit for bit. Two trainings of two steps from a fresh state each, in one process: no tolerance.
(That the seed changes the run is tested with the data order and initialisation.)"""

from __future__ import annotations

import jax
import numpy as np

from ladder_trainer.data.reader import BatchStream, open_data
from ladder_trainer.train_step import abstract_state, init_state, train_step

from .conftest import ONE_LEVEL, make_run


def _train(run, steps: int = 2):
    data = open_data(run.data, run.model)
    stream = BatchStream(data.source, run.training.global_batch, run.training.seed)
    config = abstract_state(run, data.null_context.shape).config
    state = init_state(run, run.training.seed, data.null_context, config)
    losses = []
    for step in range(steps):
        batch = {k: jax.numpy.asarray(v) for k, v in stream.batch(step).items()}
        state, metrics = train_step(state, batch, jax.random.fold_in(jax.random.key(run.training.seed), step))
        losses.append(float(metrics["loss"]))
    return losses, [np.asarray(x) for x in jax.tree_util.tree_leaves((state.params, state.ema_params))]


def test_two_trainings_of_one_spec_are_bit_identical():
    run = make_run(ladder=ONE_LEVEL)
    losses_a, leaves_a = _train(run)
    losses_b, leaves_b = _train(run)
    assert losses_a == losses_b
    for a, b in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(a, b)
