"""Shared helpers for the local runner's tests: small experiments and a fake-pod launcher."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from ladder_api.loading import parse_experiment

FAKE = Path(__file__).with_name("fake_pods.py")


def tiny_experiment(name: str = "tiny", widths=(8, 16), steps: int = 6, **evaluation):
    ev = {"samplers": ["ddim", "dpmpp_2m"], "steps": [2, 4], "guidanceScales": [1.0, 3.0],
          "numSamples": 10, "batchSize": 10, "metrics": ["fid", "adherence"],
          "fidFeatures": "digits-classifier", "checkpoints": "final"}
    ev.update(evaluation)
    return parse_experiment({
        "apiVersion": "ladder.dev/v1alpha1",
        "kind": "ScalingExperiment",
        "metadata": {"name": name},
        "spec": {
            "ladder": {"widths": list(widths), "contextDim": 8, "contextTokens": 2, "channelMult": [1, 2],
                       "numResBlocks": 1, "attentionLevels": [1], "numHeads": 2, "normGroups": 4,
                       "latentChannels": 1, "latentSize": 8},
            "data": {"trainUri": "builtin:digits", "autoencoder": {"kind": "identity"},
                     "textEncoder": "builtin-digits",
                     "referenceSet": {"name": "digits-test", "uri": "builtin:digits-test"}},
            "training": {"steps": steps, "globalBatch": 8, "lrSchedule": {"warmupSteps": 1},
                         "checkpoint": {"intervalSteps": 2, "keep": 2}, "logEverySteps": 1},
            "evaluation": ev,
        },
    })


def write_fake_python(folder: Path) -> str:
    """An executable that behaves like `python` for `-m ladder_trainer` / `-m ladder_evaluator`."""
    launcher = folder / "fake-python"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return str(launcher)


@pytest.fixture
def fake_python(tmp_path) -> str:
    return write_fake_python(tmp_path)
