"""ladder_api.validation: what `ladder validate` and the operator both refuse, per target, and the
site's allowlists (ladder_api.policy)."""

from __future__ import annotations

import copy

import pytest
import yaml

from ladder_api.loading import parse_experiment
from ladder_api.policy import Policy, image_allowed, uri_allowed
from ladder_api.validation import Problem, Target, problems
from tests.conftest import EXAMPLES

QUICKSTART = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
PAPER = yaml.safe_load((EXAMPLES / "paper-v5e.yaml").read_text())


def exp(doc: dict, **changes):
    doc = copy.deepcopy(doc)
    for path, value in changes.items():
        cur = doc["spec"]
        *parents, last = path.split("__")
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return parse_experiment(doc)


def fields(found: list[Problem]) -> dict[str, str]:
    return {p.field: p.message for p in found}


def test_outputs_on_this_machine_run_here_but_not_in_a_pod():
    """Issue 13: the operator accepted `outputUri: ./ladder-runs`; its pods could only fail."""
    assert problems(exp(QUICKSTART), Target.cluster) == [], "the quickstart runs on a cluster too"
    e = exp(QUICKSTART, storage__outputUri="./ladder-runs")
    assert problems(e, Target.local) == []
    (p,) = problems(e, Target.cluster)
    assert p.cluster_only and p.field == "spec.storage.outputUri"
    assert "./ladder-runs" in p.message and "gs://" in p.message and "ladder run" in p.message
    assert str(p).startswith("spec.storage.outputUri: ./ladder-runs ")


def test_the_paper_examples_are_valid_for_a_cluster():
    assert problems(exp(PAPER), Target.cluster, Policy()) == []


@pytest.mark.parametrize(("changes", "field"), [
    ({"storage__outputUri": "/data/out"}, "spec.storage.outputUri"),
    ({"storage__outputUri": "file:///data/out"}, "spec.storage.outputUri"),
    ({"training__compilationCacheUri": "/tmp/jax-cache"}, "spec.training.compilationCacheUri"),
    ({"data__trainUri": "./latents"}, "spec.data.trainUri"),
    ({"data__trainUri": "file:///mnt/latents"}, "spec.data.trainUri"),
    ({"data__referenceSet__statsUri": "builtin:digits-test"}, "spec.data.referenceSet.statsUri"),
    ({"data__referenceSet__statsUri": "/opt/stats.npz"}, "spec.data.referenceSet.statsUri"),
    ({"evaluation__inceptionWeightsUri": "gs://b/inception.pt"}, "spec.evaluation.inceptionWeightsUri"),
    ({"evaluation__clipWeightsUri": "weights/clip.safetensors"}, "spec.evaluation.clipWeightsUri"),
    ({"data__autoencoder__weightsUri": "./vae"}, "spec.data.autoencoder.weightsUri"),
    ({"data__textEncoder__weightsUri": "minilm/"}, "spec.data.textEncoder.weightsUri"),
])
def test_what_a_pod_cannot_reach_is_refused_on_a_cluster_only(changes, field):
    e = exp(PAPER, **changes)
    assert problems(e, Target.local) == []
    found = problems(e, Target.cluster)
    assert list(fields(found)) == [field] and all(p.cluster_only for p in found)


def test_what_a_pod_reaches():
    """gs:// everywhere; builtin: sets (scikit-learn's digits ship in the trainer and evaluator
    images, see tests/images); weights as absolute paths baked into the image, or gs:// for the
    autoencoder (its loader reads gs://)."""
    e = exp(PAPER, data__trainUri="builtin:digits", data__referenceSet__uri="builtin:digits-test",
            data__autoencoder__weightsUri="gs://b/vae/", evaluation__clipWeightsUri="file:///opt/w/clip.st")
    assert problems(e, Target.cluster) == []


def test_a_batch_the_chips_do_not_divide_is_refused_naming_the_slice_and_widths():
    e = exp(PAPER, training__globalBatch=2000)
    found = problems(e, Target.cluster)
    assert {p.field for p in found} == {"spec.training.globalBatch"}
    text = "\n".join(p.message for p in found)
    assert "the 256 chips of v5litepod-256 (widths 512)" in text
    assert "the 512 chips of 2 x v5litepod-256 (widths 768)" in text
    assert "v5litepod-64 (widths 64, 96, 128)" in text
    assert problems(e, Target.local) == []


def test_the_memory_plan_is_checked_for_every_target():
    """Issue 13: the operator skipped ladder_api.memory's per-chip plan that `ladder validate`
    ran; a size its slice cannot hold was only found out of memory on the slice."""
    e = exp(PAPER, resources__slices=[{"sliceType": "v5litepod-8"}], resources__overrides={})
    for target in Target:
        found = problems(e, target)
        memory = [p for p in found if p.field == "spec.ladder.widths"]
        assert memory and not any(p.cluster_only for p in memory)
        assert "width 768 needs about" in " ".join(p.message for p in memory)


def test_the_site_policy_names_the_field_and_the_list():
    policy = Policy(image_repositories=("ghcr.io/ladder-dev",),
                    storage_prefixes=("gs://ladder-experiments/", "gs://ladder-data"),
                    gcp_service_accounts=("ladder-runs@my-project.iam.gserviceaccount.com",))
    assert problems(exp(PAPER), Target.cluster, policy) == []
    e = exp(PAPER, resources__images={"trainer": "evil.example/miner:1", "evaluator": "busybox"},
            storage__outputUri="gs://someone-elses-bucket/", training__compilationCacheUri=None,
            resources__gcpServiceAccount="owner@my-project.iam.gserviceaccount.com")
    found = fields(problems(e, Target.cluster, policy))
    assert set(found) == {"spec.resources.images.trainer", "spec.resources.images.evaluator",
                          "spec.storage.outputUri", "spec.resources.gcpServiceAccount"}
    assert "evil.example/miner" in found["spec.resources.images.trainer"]
    assert "ghcr.io/ladder-dev" in found["spec.resources.images.trainer"]
    assert "docker.io/library/busybox" in found["spec.resources.images.evaluator"]
    assert "gs://ladder-experiments/, gs://ladder-data" in found["spec.storage.outputUri"]
    assert "ladder-runs@my-project" in found["spec.resources.gcpServiceAccount"]
    assert problems(e, Target.local, policy) == [], "a site policy is the cluster's business"
    assert set(fields(problems(e, Target.cluster, Policy()))) == set(), "empty lists allow everything"


@pytest.mark.parametrize(("uri", "ok"), [
    ("gs://ladder-experiments/", True), ("gs://ladder-experiments", True),
    ("gs://ladder-experiments/x/y", True), ("gs://ladder-experiments-evil/x", False),
    ("gs://ladder-experiments/../other/x", False), ("gs://ladder-experiments/./x", False),
    ("gs://team/a/", True), ("gs://team/ab", False), ("gs://team/", False),
])
def test_storage_prefixes_match_whole_segments(uri, ok):
    assert uri_allowed(uri, ("gs://ladder-experiments/", "gs://team/a")) is ok


@pytest.mark.parametrize(("ref", "ok"), [
    ("ghcr.io/ladder-dev/trainer:1", True), ("ghcr.io/ladder-dev/sub/trainer@sha256:" + "a" * 64, True),
    ("ghcr.io/ladder-dev-fork/trainer:1", False), ("ghcr.io/trainer", False),
    ("busybox:1", True), ("docker.io/library/busybox", True), ("team/busybox", False),
    ("docker.io/research/tool:2", True), ("research/tool", True), ("research-x/tool", False),
])
def test_image_repositories_match_whole_segments(ref, ok):
    assert image_allowed(ref, ("ghcr.io/ladder-dev/", "busybox", "docker.io/research/")) is ok


def test_policy_from_the_chart_values():
    assert Policy.from_json(None) == Policy()
    assert Policy.from_json({"allowedStoragePrefixes": ["gs://b/p/"]}).storage_prefixes == ("gs://b/p/",)
    for bad, match in (({"allowedImages": []}, "unknown policy keys"),
                       ({"allowedStoragePrefixes": ["/data"]}, "gs:// prefixes"),
                       ({"allowedGcpServiceAccounts": "x@p.iam.gserviceaccount.com"}, "list of non-empty")):
        with pytest.raises(ValueError, match=match):
            Policy.from_json(bad)


@pytest.mark.parametrize("target", [Target.local, Target.cluster])
def test_a_reference_set_the_evaluator_cannot_read_is_refused_before_training(target):
    """The evaluator reads prompts from an .npz and needs statistics for a set without images;
    both are refused at validation, not after every size has trained."""
    jsonl = exp(PAPER, data__referenceSet__uri="gs://ladder-data/coco/prompts.jsonl")
    jsonl = fields(problems(jsonl, target))
    assert "an .npz" in jsonl["spec.data.referenceSet.uri"]
    no_stats = exp(PAPER, data__referenceSet__uri="gs://b/prompts.npz", data__referenceSet__statsUri=None)
    assert "statsUri" in fields(problems(no_stats, target))["spec.data.referenceSet.statsUri"]
    builtin = exp(PAPER, data__trainUri="builtin:digits", data__referenceSet__uri="builtin:digits-test",
                  data__referenceSet__statsUri=None)
    assert not {k for k in fields(problems(builtin, target)) if k.startswith("spec.data.referenceSet")}


@pytest.mark.parametrize("target", [Target.local, Target.cluster])
def test_metrics_and_decoders_without_their_weights_are_refused_before_training(target):
    """The evaluator refuses the CLIP score without CLIP weights and the sd-vae decoder without
    its weights only after every size trained: validation names the field for every target."""
    no_clip = fields(problems(exp(PAPER, evaluation__metrics=["fid", "clip"],
                                  evaluation__clipWeightsUri=None), target))
    assert "clip" in no_clip["spec.evaluation.clipWeightsUri"]
    no_vae = exp(PAPER, data__autoencoder={"kind": "sd-vae"})
    assert "sd-vae" in fields(problems(no_vae, target))["spec.data.autoencoder.weightsUri"]
    assert "spec.data.autoencoder.weightsUri" not in fields(problems(exp(PAPER), target))
    pixels = exp(PAPER, data__autoencoder={"kind": "identity"})
    assert "spec.data.autoencoder.weightsUri" not in fields(problems(pixels, target))
