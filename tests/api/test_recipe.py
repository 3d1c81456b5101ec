"""The recipe (ladder_api.recipe): one definition of what fixes a trained model, used by the
recipe hash, the operator's refusals and `ladder run`'s resume check."""

from __future__ import annotations

import copy

import pytest

from ladder_api import recipe as rc
from ladder_api.loading import parse_experiment
from ladder_api.plan import expand

BASE = {
    "apiVersion": "ladder.dev/v1alpha1",
    "kind": "ScalingExperiment",
    "metadata": {"name": "r"},
    "spec": {
        "ladder": {"widths": [32, 64], "contextDim": 32, "contextTokens": 4, "channelMult": [1, 2],
                   "numResBlocks": 1, "attentionLevels": [1], "numHeads": 4, "normGroups": 8,
                   "latentChannels": 1, "latentSize": 8},
        "training": {"steps": 600, "learningRate": 0.002, "lrSchedule": {"warmupSteps": 10}},
        "resources": {"slices": [{"sliceType": "v5litepod-16"}]},
    },
}


def _run(edit=None, width: int = 32):
    doc = copy.deepcopy(BASE)
    if edit:
        edit(doc["spec"])
    return expand(parse_experiment(doc)).run(width)


def _set(path: str, value):
    def edit(spec):
        cur = spec
        *parents, last = path.split(".")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return edit


@pytest.mark.parametrize("path,value", [
    ("training.sharding.fsdp", 2),
    ("training.checkpoint.intervalSteps", 7),
    ("training.logEverySteps", 3),
    ("training.compilationCacheUri", "/tmp/cache"),
    ("training.distributedInitTimeoutSeconds", 60),
    ("training.ema.evaluateEma", False),
    ("evaluation.numSamples", 99),
    ("data.referenceSet.uri", "builtin:digits-test"),
    ("scheduling.maxConcurrent", 5),
    ("resources.evalSlice.sliceType", "v5litepod-8-1host"),
])
def test_where_and_how_often_are_not_the_recipe(path, value):
    base, edited = _run(), _run(_set(path, value))
    assert rc.recipe_diff(base.recipe(), edited.recipe()) == []
    assert base.recipe_hash == edited.recipe_hash


def test_a_slice_rules_sharding_is_not_the_recipe_either():
    def rule_fsdp(spec):
        spec["resources"]["slices"] = [{"sliceType": "v5litepod-16", "sharding": {"fsdp": 4}}]
    edited = _run(rule_fsdp)
    assert edited.training.sharding.fsdp == 4, "the run trains with the rule's sharding"
    assert edited.recipe_hash == _run().recipe_hash


@pytest.mark.parametrize("path,value,named", [
    ("training.learningRate", 0.004, "spec.training.learningRate: 0.002 -> 0.004"),
    ("training.ema.decay", 0.99, "spec.training.ema.decay: 0.9999 -> 0.99"),
    ("ladder.numHeads", 2, "spec.ladder.numHeads: 4 -> 2"),
    ("data.trainUri", "gs://b/other/", 'spec.data.trainUri: "gs://ladder-data/webli-latents/" -> "gs://b/other/"'),
    ("training.seed", 3, "spec.training.seed: 0 -> 3"),
])
def test_math_edits_change_the_recipe_and_are_named(path, value, named):
    base, edited = _run(), _run(_set(path, value))
    assert rc.recipe_diff(base.recipe(), edited.recipe()) == [named]
    assert base.recipe_hash != edited.recipe_hash


def test_the_width_is_in_the_hash_not_in_the_recipe():
    assert _run(width=32).recipe() == _run(width=64).recipe()
    assert _run(width=32).recipe_hash != _run(width=64).recipe_hash


def test_a_field_added_later_at_its_legacy_value_keeps_old_identities(monkeypatch):
    """An upgrade: the old version recorded recipes without `training.guidanceDropout` (pretend
    it is new), which the old code behaved as 0.1; the new version's default is also 0.1."""
    new = _run().recipe()
    old = {k: v for k, v in new.items() if k != "training.guidanceDropout"}
    assert rc.recipe_hash(old, 32) != rc.recipe_hash(new, 32), "without the legacy entry it changes"
    monkeypatch.setitem(rc.LEGACY, "training.guidanceDropout", 0.1)
    assert rc.recipe_hash(old, 32) == rc.recipe_hash(new, 32)
    assert rc.recipe_diff(old, new) == []
    changed = _run(_set("training.guidanceDropout", 0.2)).recipe()
    assert rc.recipe_diff(old, changed) == ["spec.training.guidanceDropout: 0.1 -> 0.2"]
