"""Shared fixtures: the digits classifier is trained once per session into a temp cache; a run
with a checkpoint to evaluate."""

from __future__ import annotations

import shutil
import types
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def classifier_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("evaluator-cache")


@pytest.fixture(scope="session")
def digits_extractor(classifier_cache):
    from ladder_evaluator.metrics import digits_classifier

    return digits_classifier.extractor(classifier_cache)


def evaluable(run, classifier_cache, step: int = 10):
    """run with a checkpoint at `step` (initial weights: the pipeline, not quality) and, in its
    evaluation cache, the session's digits classifier (its training is tested in test_metrics),
    which the evaluator loads instead of training it again. Returns run."""
    import jax

    from ladder_evaluator.evaluate import cache_dir
    from ladder_trainer import checkpointing
    from ladder_trainer.models import init_params

    cache_dir(run).mkdir(parents=True, exist_ok=True)
    for trained_classifier in Path(classifier_cache).glob("digits-classifier-*.npz"):
        shutil.copy(trained_classifier, cache_dir(run))
    params = init_params(run.model, jax.random.key(0))
    mngr = checkpointing.manager(run.paths.checkpoints, async_save=False)
    state = types.SimpleNamespace(params=params, ema_params=params, opt_state={"count": jax.numpy.zeros(())})
    checkpointing.save(mngr, step, state, {"model": run.model.model_dump()}, force=True)
    mngr.wait_until_finished()
    return run
