"""Tiny configurations shaped like examples/quickstart.yaml, so tests stay within the area's budget."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ladder_api.plan import RunConfig, expand
from ladder_api.spec import ScalingExperiment
from tests.conftest import JAX_CACHE  # the session's persistent compilation cache (see there)

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



def make_run(tmp_path=None, ladder=None, spec=None, **training) -> RunConfig:
    """The tiny run; ladder and each section in spec ({section: fields}) update the defaults."""
    import copy

    doc = copy.deepcopy(QUICKSTART_LIKE)
    doc["spec"]["training"].update({"compilationCacheUri": JAX_CACHE, **training})
    doc["spec"]["ladder"].update(ladder or {})
    for section, fields in (spec or {}).items():
        doc["spec"].setdefault(section, {}).update(fields)
    exp = ScalingExperiment.model_validate(doc)
    run = expand(exp, output_uri=str(tmp_path) if tmp_path else None).runs[0]
    return run


@pytest.fixture
def tiny_run(tmp_path) -> RunConfig:
    return make_run(tmp_path)


@pytest.fixture
def tiny_model_config(tiny_run):
    return tiny_run.model


def write_run(run: RunConfig, path) -> str:
    path.write_text(run.model_dump_json(by_alias=True))
    return str(path)


def trainer_env(xla_flags: str = "", **extra) -> dict:
    """Environment of a trainer subprocess: CPU, and LLVM's cheapest optimisation level (as every
    JAX process of the session: tests/conftest.py) with the given XLA flags."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    flags = f"--xla_backend_optimization_level=0 {xla_flags}".strip()
    env.update({"JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags, **extra})
    return env


# One resolution level: half the ops of the quickstart layout, so half the compile time.
ONE_LEVEL = {"channelMult": [1], "attentionLevels": [0]}


def start_trainer(config_path: str, **env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ladder_trainer", "--config", config_path, "--status", "off"],
        env=trainer_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
