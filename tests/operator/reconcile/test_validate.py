"""Validation, and the Invalid status: the problem named, and nothing known erased."""

from __future__ import annotations

from ladder_api.spec import ScalingExperiment
from ladder_operator.defaults import SiteDefaults
from ladder_operator.reconcile.actions import PostEvent, SetFinalizers
from ladder_operator.reconcile.experiment import read_experiment
from ladder_operator.reconcile.validate import Invalid, invalid_outcome, validate
from tests.operator.test_reconcile import NOW, experiment

SIZES = [
    {"width": 32, "phase": "Succeeded", "jobset": "quickstart-c32", "evalJobset": "quickstart-c32-eval",
     "restarts": 1, "step": 600, "totalSteps": 600, "loss": 0.1},
    {"width": 64, "phase": "Training", "jobset": "quickstart-c64", "restarts": 0, "step": 20},
]


def running() -> dict:
    exp = experiment()
    exp["status"] = {
        "phase": "Running", "message": "1/3 sizes done; training c64", "specHash": "abc", "codeVersion": "0",
        "images": {"trainer": "t:1", "evaluator": "e:1"}, "sizes": SIZES,
        "summary": {"sizesDone": 1, "sizesTotal": 3, "progress": "1/3", "bestFid": 7.0, "bestWidth": 32},
        "conditions": [{"type": "Ready", "status": "False", "reason": "SizesRemaining",
                        "lastTransitionTime": "2025-12-01T00:00:00Z"}],
        "results": [{"id": "not-ours"}],
    }
    return exp


def test_valid_and_invalid_specs():
    assert isinstance(validate(experiment(), SiteDefaults()), ScalingExperiment)
    bad = validate(experiment(training__learningRate=-1, ladder__widths=[32, 64, 50]), SiteDefaults())
    assert isinstance(bad, Invalid)
    assert "spec.training.learningRate" in bad.message and "spec.ladder.widths" in bad.message


def test_the_invalid_status_keeps_the_sizes_and_summary_it_owns():
    raw = running()
    problem = "spec.ladder.widths: 50 is not a multiple of 8"
    out = invalid_outcome(read_experiment(raw), Invalid(problem), NOW)
    st = out.status
    assert (out.phase, st["phase"], st["message"]) == ("Invalid", "Invalid", problem)
    assert st["sizes"] == [
        {"width": 32, "phase": "Succeeded", "jobset": "quickstart-c32", "evalJobset": "quickstart-c32-eval",
         "restarts": 1},
        {"width": 64, "phase": "Training", "jobset": "quickstart-c64", "restarts": 0},
    ], "the operator's fields only: the trainer's stay the trainer's"
    assert st["summary"]["bestFid"] == 7.0 and st["specHash"] == "abc" and "results" not in st
    cond = {c["type"]: (c["status"], c["reason"], c["lastTransitionTime"]) for c in st["conditions"]}
    assert cond == {
        "Ready": ("False", "InvalidSpec", "2025-12-01T00:00:00Z"),
        "Progressing": ("False", "InvalidSpec", NOW),
        "Degraded": ("True", "InvalidSpec", NOW),
        "Suspended": ("False", "NotSuspended", NOW),
    }
    assert out.actions == [PostEvent("Warning", "InvalidSpec", problem)]


def test_the_same_problem_again_posts_nothing_and_deletion_is_not_blocked():
    raw = running()
    raw["status"].update(phase="Invalid", message="bad")
    assert invalid_outcome(read_experiment(raw), Invalid("bad"), NOW).actions == []
    raw["metadata"].update(deletionTimestamp=NOW, finalizers=["ladder.dev/checkpoint-cleanup", "other"])
    assert invalid_outcome(read_experiment(raw), Invalid("bad"), NOW).actions == [SetFinalizers(("other",))]
