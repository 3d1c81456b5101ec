"""The U-Net's programs are compiled with their platform's options (ladder_trainer.compile_options):
on a CPU, with XLA's YNN fusion off, checked on the optimised train step itself (the sampling
loop's check, against XLA's defaults, is tests/evaluator/test_samplers.py's)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ladder_trainer import compile_options, sharding
from ladder_trainer.train_step import _train_step, abstract_state, init_state

from .conftest import ONE_LEVEL, make_run


def test_only_cpus_get_options():
    assert compile_options.for_platform("cpu") == {"xla_cpu_experimental_ynn_fusion_type": ""}
    assert compile_options.for_platform("tpu") is None and compile_options.for_platform("gpu") is None


@pytest.mark.slow  # a train step's compile: ~30 s of CPU
def test_the_train_step_runs_without_ynn_kernels():
    run = make_run(ladder=ONE_LEVEL)
    mesh = sharding.make_mesh(run.training.sharding)
    null = np.zeros((run.model.context_tokens, run.model.context_dim), np.float32)
    abstract = abstract_state(run, null.shape)
    shardings = sharding.tree_shardings(abstract, mesh)
    state = init_state(run, 0, null, abstract.config, shardings)
    b, m = run.training.global_batch, run.model
    batch = sharding.put_batch({
        "latents": np.zeros((b, m.latent_size, m.latent_size, m.latent_channels), np.float32),
        "context": np.zeros((b, m.context_tokens, m.context_dim), np.float32),
    }, mesh)
    step = sharding.sharded_train_step(_train_step, shardings, mesh)
    text = step.lower(state, batch, jax.random.key(0)).compile().as_text()
    assert "ynn_fusion" not in text  # XLA's defaults make dozens (the sampling loop's test)
