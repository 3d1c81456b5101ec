"""Evaluation prompts: the builtin digits split and a production .npz of embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from ladder_api.errors import UserError
from ladder_api.loading import parse_experiment
from ladder_api.plan import expand
from ladder_evaluator import prompts


def _run(uri: str, dim=8, tokens=4):
    exp = parse_experiment({
        "apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": "p"},
        "spec": {
            "ladder": {"widths": [16], "contextDim": dim, "contextTokens": tokens, "channelMult": [1, 2],
                       "numResBlocks": 1, "attentionLevels": [1], "numHeads": 2, "normGroups": 8,
                       "latentChannels": 1, "latentSize": 8},
            "data": {"referenceSet": {"name": "ref", "uri": uri}},
            "storage": {"outputUri": "/tmp/unused"},
        },
    })
    return expand(exp).runs[0]


def test_builtin_digits_prompts_match_the_trainer_embeddings():
    from ladder_trainer.data import digits

    p = prompts.load(_run("builtin:digits-test"))
    split = digits.load("test")
    assert len(p) == len(split) and p.captions[0] == split.captions[0]
    np.testing.assert_array_equal(p.context[:3], digits.encode_captions(split.captions[:3], 8, 4))
    np.testing.assert_array_equal(p.uncond, digits.null_context(8, 4))
    ctx, caps, labels = p.take(len(p) - 1, 3)  # wraps around: prompt i mod N
    assert caps[1] == split.captions[0] and labels[1] == split.labels[0] and ctx.shape == (3, 4, 8)


def test_npz_prompts_and_their_errors(tmp_path):
    good = tmp_path / "prompts.npz"
    np.savez(good, captions=np.array(["a cat", "a dog"]), context=np.ones((2, 4, 8), np.float32),
             uncond=np.zeros((4, 8), np.float32))
    p = prompts.load(_run(str(good)))
    assert p.captions == ("a cat", "a dog") and p.labels is None and p.images is None
    with pytest.raises(UserError, match="contextDim 16"):
        prompts.load(_run(str(good), dim=16))
    with pytest.raises(UserError, match="referenceSet.uri"):
        prompts.load(_run(str(tmp_path / "missing.npz")))
    bad = tmp_path / "bad.npz"
    np.savez(bad, captions=np.array(["x"]))
    with pytest.raises(UserError, match="captions, context, uncond"):
        prompts.load(_run(str(bad)))
