"""Site defaults from the chart fill what an experiment leaves unset, and never override it."""

from __future__ import annotations

import json

import pytest

from ladder_api.errors import UserError
from ladder_operator import defaults
from ladder_operator.reconcile import ApplyShared, Create, Observed, reconcile
from tests.conftest import validate_manifest
from tests.operator.test_reconcile import NOW, experiment

SITE = {
    "images": {"trainer": "reg/trainer:9", "evaluator": "reg/eval:9", "pullPolicy": "Always"},
    "queue": "site-queue",
    "priorityClass": "low",
    "outputUri": "gs://site-bucket/",
    "workloads": {
        "serviceAccountAnnotations": {"iam.gke.io/gcp-service-account": "sa@p.iam"},
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
    assert filled["spec"]["storage"]["outputUri"] == "./ladder-runs", "the experiment's own value wins"
    assert "resources" not in raw["spec"], "the input is not modified"


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
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == "sa@p.iam"
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
