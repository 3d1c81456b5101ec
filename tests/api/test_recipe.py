"""The recipe (ladder_api.recipe): one definition of what fixes a trained model, used by the
recipe hash, the operator's refusals and `ladder run`'s resume check."""

from __future__ import annotations

import copy
import json

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


def _pin_legacy(spec):
    for path, value in rc.LEGACY.items():
        _set(path, value)(spec)


@pytest.mark.parametrize("path,legacy,new", [
    ("training.initialization", "lecun-normal", "compvis"),
    ("training.ema.warmup", False, True),
])
def test_protocol_fields_keep_old_identities_and_the_new_defaults_differ(path, legacy, new):
    """A recipe recorded before these fields existed (it lacks their keys) has the identity of a
    spec that sets their legacy values, while each new default (the paper's protocol) is a named
    change of identity."""
    assert rc.LEGACY[path] == legacy
    current = _run().recipe()
    old = {k: v for k, v in current.items() if k not in rc.LEGACY}
    pinned = _run(_pin_legacy).recipe()
    assert rc.recipe_hash(old, 32) == rc.recipe_hash(pinned, 32)
    assert rc.recipe_diff(old, pinned) == []
    assert current[path] == new
    assert f"spec.{path}: {json.dumps(legacy)} -> {json.dumps(new)}" in rc.recipe_diff(old, current)
    assert rc.recipe_hash(old, 32) != rc.recipe_hash(current, 32)


def test_text_encoder_as_an_object_keeps_the_identity_of_the_name_it_replaced():
    """data.textEncoder was a name; now {name, weightsUri, hash}. Without a hash the recipe (and
    its hash) is what the name alone gave, so experiments started before keep resuming; a hash
    or another name is a recipe change, a weights location is not."""
    as_string = _run(_set("data.textEncoder", "clip-vit-l14"))
    as_object = _run(_set("data.textEncoder", {"name": "clip-vit-l14", "weightsUri": "/w/clip"}))
    assert as_string.recipe_hash == as_object.recipe_hash
    recorded_before = {k: v for k, v in as_string.recipe().items()
                       if k not in ("data.textEncoder.hash", "data.autoencoder.hash")}
    assert recorded_before["data.textEncoder"] == "clip-vit-l14"
    assert rc.recipe_diff(recorded_before, as_object.recipe()) == []
    hashed = _run(_set("data.textEncoder", {"name": "clip-vit-l14", "hash": "sha256:" + "0" * 64}))
    assert hashed.recipe_hash != as_string.recipe_hash
    assert _run(_set("data.textEncoder", "clip-vit-h14")).recipe_hash != as_string.recipe_hash


PREPARE = {"webdataset": ["gs://b/shards/{00000..00009}.tar"], "workers": 4}


def test_a_prepare_section_is_not_the_recipe_and_its_absence_changes_no_hash():
    """How the data is made (source, workers, slice) is not the recipe: trainUri and the
    encoders' hashes name the data. A spec without the section keeps its spec hash and its run
    configs byte for byte (operators already running it see no change)."""
    from ladder_api.plan import spec_hash

    plain, prepared = _run(), _run(_set("data.prepare", PREPARE))
    assert prepared.recipe_hash == plain.recipe_hash
    assert rc.recipe_diff(plain.recipe(), prepared.recipe()) == []
    assert "prepare" not in plain.config_json()
    assert '"workers":4' in prepared.config_json()
    doc = copy.deepcopy(BASE)
    without = spec_hash(parse_experiment(doc))
    doc["spec"]["data"] = {"prepare": None}
    assert spec_hash(parse_experiment(doc)) == without


def _experiment(edit=None):
    doc = copy.deepcopy(BASE)
    if edit:
        edit(doc["spec"])
    return parse_experiment(doc)


def _old_recipe() -> dict:
    """The recipe an experiment started before the protocol fields recorded: it lacks them."""
    return {k: v for k, v in _run(_pin_legacy).recipe().items() if k not in rc.LEGACY}


def test_a_started_experiment_keeps_the_defaults_it_started_with():
    """Versioned defaults: an experiment whose recorded recipe predates the protocol fields and
    whose spec leaves them unset plans with their legacy values, so its identity is the one it
    started with; a new experiment (nothing recorded) gets the paper's defaults."""
    exp = _experiment()
    assert rc.started_defaults(exp, None) == {}
    assert rc.keep_started_defaults(exp, None) is exp
    old = _old_recipe()
    legacy = {"training.initialization": "lecun-normal", "training.ema.warmup": False}
    assert rc.started_defaults(exp, old) == legacy
    kept = expand(rc.keep_started_defaults(exp, old)).run(32)
    assert rc.recipe_diff(old, kept.recipe()) == []
    assert kept.recipe_hash == rc.recipe_hash(old, 32)
    assert exp.spec.training.initialization == "compvis", "the spec itself is not changed"
    assert expand(exp).run(32).recipe_hash != kept.recipe_hash


def test_a_value_the_spec_sets_or_the_record_holds_is_never_replaced():
    """Set explicitly (even to the new default), a field is the user's choice: the refusal names it
    as a change. Recorded (the experiment started after the field existed), its default stays."""
    explicit = _experiment(_set("training.initialization", "compvis"))
    assert rc.started_defaults(explicit, _old_recipe()) == {"training.ema.warmup": False}
    kept = expand(rc.keep_started_defaults(explicit, _old_recipe())).run(32)
    assert rc.recipe_diff(_old_recipe(), kept.recipe()) == [
        'spec.training.initialization: "lecun-normal" -> "compvis"']
    assert rc.started_defaults(_experiment(), _run().recipe()) == {}
