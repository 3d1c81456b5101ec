"""Site defaults from the chart fill what an experiment leaves unset, and never override it."""

from __future__ import annotations

import json

import pytest

from ladder_api.errors import UserError
from ladder_api.estimate import DEFAULT_EVAL_MFU, DEFAULT_TRAIN_MFU
from ladder_operator import defaults
from ladder_operator.reconcile import ApplyShared, Create, Observed, reconcile
from tests.conftest import validate_manifest
from tests.operator.test_reconcile import NOW, experiment

RUNS = "runs@p.iam.gserviceaccount.com"
SITE = {
    "images": {"trainer": "reg/trainer:9", "evaluator": "reg/eval:9", "pullPolicy": "Always"},
    "queue": "site-queue",
    "priorityClass": "low",
    "outputUri": "gs://site-bucket/",
    "workloads": {
        "gcpServiceAccount": RUNS,
        "serviceAccountAnnotations": {"example.com/team": "vision"},
        "nodeSelector": {"pool": "tpu"},
        "tolerations": [{"key": "x", "operator": "Exists", "effect": "NoSchedule"}],
    },
}


def test_unset_fields_are_filled_and_set_ones_kept():
    site = defaults.SiteDefaults.from_json(SITE)
    raw = experiment()
    raw["spec"]["scheduling"] = {"queue": "mine"}
    filled = defaults.fill_spec(raw, site)
    assert filled["spec"]["scheduling"] == {"queue": "mine", "priorityClass": "low"}
    assert filled["spec"]["resources"]["images"]["trainer"] == "reg/trainer:9"
    assert filled["spec"]["storage"]["outputUri"] == "gs://ladder-test/runs/", "the experiment's value wins"
    assert filled["spec"]["resources"]["gcpServiceAccount"] == RUNS
    raw["spec"]["resources"] = {"gcpServiceAccount": "mine@p.iam.gserviceaccount.com"}
    filled = defaults.fill_spec(raw, site)
    assert filled["spec"]["resources"]["gcpServiceAccount"] == "mine@p.iam.gserviceaccount.com"
    assert "images" not in raw["spec"]["resources"], "the input is not modified"


def test_reconcile_renders_with_site_defaults():
    site = defaults.SiteDefaults.from_json(SITE)
    out = reconcile(experiment(), Observed(workloads={}), NOW, site)
    js = next(a.obj for a in out.actions if isinstance(a, Create))
    assert js["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "site-queue"
    pod = js["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["pool"] == "tpu" and pod["containers"][0]["image"] == "reg/trainer:9"
    assert {"key": "x", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert len([t for t in pod["tolerations"] if t["key"] == "google.com/tpu"]) == 1
    shared = next(a for a in out.actions if isinstance(a, ApplyShared)).objs
    sa = next(o for o in shared if o["kind"] == "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": RUNS,
                                             "example.com/team": "vision"}
    assert out.status["images"]["trainer"] == "reg/trainer:9"
    # What the operator creates is still valid against the real schemas.
    validate_manifest(js)
    for obj in shared:
        validate_manifest(obj)


def test_defaults_file(tmp_path, monkeypatch):
    path = tmp_path / "defaults.json"
    path.write_text(json.dumps(SITE))
    monkeypatch.setenv(defaults.ENV, str(path))
    assert defaults.load().queue == "site-queue"
    monkeypatch.delenv(defaults.ENV)
    assert defaults.load() == defaults.SiteDefaults()
    path.write_text("[1, 2")
    with pytest.raises(UserError, match="defaults.json"):
        defaults.load(str(path))
    with pytest.raises(UserError, match="not found"):
        defaults.load(str(tmp_path / "missing.json"))


def test_a_chart_that_put_the_google_account_among_the_annotations_still_sets_it():
    old = {"workloads": {"serviceAccountAnnotations": {"iam.gke.io/gcp-service-account": RUNS}}}
    site = defaults.SiteDefaults.from_json(old)
    assert site.gcp_service_account == RUNS and site.service_account_annotations == {}


def test_the_site_policy_sets_an_experiment_outside_it_invalid_naming_field_and_list():
    """Issue 13 (security): anyone who may create an experiment chose any image, any Google service
    account and (with retention: delete) any bucket prefix for the operator to delete under."""
    site = defaults.SiteDefaults.from_json({**SITE, "policy": {
        "allowedImageRepositories": ["reg/"], "allowedStoragePrefixes": ["gs://site-bucket/"],
        "allowedGcpServiceAccounts": [RUNS]}})
    raw = experiment(storage__outputUri="gs://site-bucket/team/")
    assert reconcile(raw, Observed(workloads={}), NOW, site).phase == "Pending"
    raw = experiment(training__checkpoint__retention="delete")  # outputUri gs://ladder-test/runs/
    out = reconcile(raw, Observed(workloads={}), NOW, site)
    assert out.phase == "Invalid" and not any(isinstance(a, (Create, ApplyShared)) for a in out.actions)
    assert out.status["message"] == (
        "spec.storage.outputUri: gs://ladder-test/runs/ is outside this cluster's allowed storage prefixes "
        "(gs://site-bucket/); use one of them or ask the cluster's administrator")
    raw = experiment(storage__outputUri="gs://site-bucket/", resources__images={"trainer": "elsewhere/t:1"})
    message = reconcile(raw, Observed(workloads={}), NOW, site).status["message"]
    assert message.startswith(
        "spec.resources.images.trainer: elsewhere/t:1 (repository docker.io/elsewhere/t) is not in")
    with pytest.raises(ValueError, match="gs:// prefixes"):
        defaults.SiteDefaults.from_json({"policy": {"allowedStoragePrefixes": ["./runs"]}})


def test_the_operator_refuses_what_only_ladder_run_can_execute():
    """Issue 13: `outputUri: ./ladder-runs` was accepted; pods could only fail after TPU admission."""
    out = reconcile(experiment(storage__outputUri="./ladder-runs"), Observed(workloads={}), NOW)
    assert out.phase == "Invalid"
    assert out.status["message"].startswith("spec.storage.outputUri: ./ladder-runs ")
    assert not any(isinstance(a, (Create, ApplyShared)) for a in out.actions)
    out = reconcile(experiment(training__globalBatch=100), Observed(workloads={}), NOW)
    assert out.phase == "Invalid"
    assert "spec.training.globalBatch: 100 is not divisible" in out.status["message"]
    big = experiment(ladder__widths=[32, 2048], ladder__latentSize=64, training__globalBatch=4096)
    out = reconcile(big, Observed(workloads={}), NOW)
    assert "spec.ladder.widths: width 2048 needs about" in out.status["message"]


def test_the_sites_cost_assumptions_reach_the_status_estimate(tmp_path):
    site = defaults.SiteDefaults.from_json({"costEstimate": {"trainMfu": 0.5, "pricePerChipHour": 1.5}})
    cost = site.cost
    assert (cost.train_mfu, cost.eval_mfu, cost.price_per_chip_hour) == (0.5, DEFAULT_EVAL_MFU, 1.5)
    status = reconcile(experiment(), Observed(), NOW, site).status
    default = reconcile(experiment(), Observed(), NOW).status
    cost, plain = status["cost"], default["cost"]
    assert cost["trainMfu"] == 0.5 and cost["cost"] == pytest.approx(1.5 * cost["chipHours"], rel=1e-3)
    expected = plain["trainChipHours"] * DEFAULT_TRAIN_MFU / 0.5
    assert cost["trainChipHours"] == pytest.approx(expected, rel=1e-3)
    assert plain["trainChipHours"] > 0
    assert plain.get("cost") is None and plain["spentChipHours"] == 0
    path = tmp_path / "defaults.json"
    path.write_text(json.dumps({"costEstimate": {"trainMfu": 2}}))
    with pytest.raises(UserError, match="train_mfu must be in"):
        defaults.load(str(path))
