"""Tiny configurations shaped like examples/quickstart.yaml, so tests stay within the area's budget."""

from __future__ import annotations

import pytest

from ladder_api.plan import RunConfig, expand
from ladder_api.spec import ScalingExperiment

QUICKSTART_LIKE = {
    "apiVersion": "ladder.dev/v1alpha1",
    "kind": "ScalingExperiment",
    "metadata": {"name": "tiny"},
    "spec": {
        "ladder": {
            "widths": [16],
            "contextDim": 32,
            "contextTokens": 4,
            "channelMult": [1, 2],
            "numResBlocks": 1,
            "attentionLevels": [1],
            "numHeads": 4,
            "normGroups": 8,
            "latentChannels": 1,
            "latentSize": 8,
        },
        "data": {
            "trainUri": "builtin:digits",
            "autoencoder": {"kind": "identity"},
            "textEncoder": "builtin-digits",
        },
        "training": {
            "steps": 8,
            "globalBatch": 8,
            "learningRate": 0.002,
            "lrSchedule": {"kind": "cosine", "warmupSteps": 2},
            "computeDtype": "float32",
            "ema": {"decay": 0.9},
            "checkpoint": {"intervalSteps": 2, "keep": 2},
            "logEverySteps": 2,
        },
        "storage": {"outputUri": "/tmp/ladder-unused"},
    },
}


def make_run(tmp_path=None, **training) -> RunConfig:
    import copy

    doc = copy.deepcopy(QUICKSTART_LIKE)
    doc["spec"]["training"].update(training)
    exp = ScalingExperiment.model_validate(doc)
    run = expand(exp, output_uri=str(tmp_path) if tmp_path else None).runs[0]
    return run


@pytest.fixture
def tiny_run(tmp_path) -> RunConfig:
    return make_run(tmp_path)


@pytest.fixture
def tiny_model_config(tiny_run):
    return tiny_run.model
