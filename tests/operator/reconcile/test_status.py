"""The operator's status step: what it applies (its own fields only) and the Events it posts."""

from __future__ import annotations

import pytest

from ladder_api.digest import compute
from ladder_api.estimate import estimate
from ladder_api.plan import expand
from ladder_api.spec import ScalingExperiment
from ladder_api.status import Result, SizePhase, SizeStatus
from ladder_operator.reconcile.actions import PostEvent
from ladder_operator.reconcile.experiment import read_experiment
from ladder_operator.reconcile.status import (
    experiment_events,
    operator_status,
    owned_wire,
    size_events,
    with_digest,
)
from tests.operator.test_reconcile import NOW, experiment

P = SizePhase


def status_of(raw, sizes, refused=()):
    exp = ScalingExperiment.model_validate({k: raw[k] for k in ("apiVersion", "kind", "metadata", "spec")})
    return operator_status(exp.spec, expand(exp), sizes, read_experiment(raw), list(refused), NOW)


RESULT = {"id": "c32-s600-ddim-n4-g1-fid-digits-classifier", "width": 32, "checkpointStep": 600,
          "sampler": "ddim", "steps": 4, "guidance": 1.0, "metric": "fid-digits-classifier", "value": 9.5,
          "numSamples": 10, "gflopsPerForward": 1.0, "samplingCost": 4.0, "samplingCostWithGuidance": 4.0}


def test_the_operator_applies_only_its_fields_and_an_old_status_with_results_is_ignored():
    raw = experiment()
    raw["status"] = {"phase": "Running", "results": [RESULT, {"id": "broken"}],
                     "sizes": [{"width": 32, "step": 600, "phase": "Evaluating"}]}
    sizes = [SizeStatus(width=32, phase=P.succeeded, jobset="quickstart-c32", step=600),
             SizeStatus(width=64, phase=P.training, jobset="quickstart-c64")]
    st = status_of(raw, sizes)
    assert (st.phase.value, st.message) == ("Running", "1/2 sizes done; training c64")
    assert st.observed_generation == 1 and st.storage_root.endswith("/quickstart")
    assert (st.summary.best_fid, st.summary.progress) == (None, "1/2"), "the digest comes from storage"
    wire = owned_wire(st)
    assert "results" not in wire
    assert wire["sizes"][0] == {"width": 32, "phase": "Succeeded", "jobset": "quickstart-c32", "restarts": 0}
    assert wire["images"] == {"trainer": st.images["trainer"], "evaluator": st.images["evaluator"]}


def test_with_digest_adds_the_results_part_and_keeps_the_old_one_without_a_digest():
    raw = experiment()
    exp = ScalingExperiment.model_validate({k: raw[k] for k in ("apiVersion", "kind", "metadata", "spec")})
    plan = expand(exp)
    sizes = [SizeStatus(width=32, phase=P.succeeded), SizeStatus(width=64, phase=P.training)]
    owned = owned_wire(status_of(raw, sizes))
    digest = compute(plan.runs, {32: [Result.model_validate(RESULT)]})
    full = with_digest(owned, digest, read_experiment(raw).status)
    assert full["summary"]["fidMetric"] == "fid-digits-classifier" and full["summary"]["bestFid"] == 9.5
    assert full["summary"]["progress"] == "1/2", "progress stays the phases'"
    expected = plan.run(32).evaluation
    per_size = len(expected.samplers) * len(expected.steps) * len(expected.guidance_scales) * 2
    want = {"recorded": 1, "expected": per_size, "failed": 0, "bestFid": 9.5}
    assert full["sizes"][0]["measurements"] == want
    assert full["summary"]["measured"] == f"1/{3 * per_size}"
    # storage unreadable: what the status says is kept, since an apply without it would erase it
    raw["status"] = full
    kept = with_digest(owned, None, read_experiment(raw).status)
    assert kept["summary"] == full["summary"]
    assert kept["sizes"][0]["measurements"] == full["sizes"][0]["measurements"]


def test_spec_suspend_is_the_reason_the_experiment_is_suspended():
    raw = experiment(suspend=True)
    st = status_of(raw, [SizeStatus(width=32, phase=P.suspended, message="spec.suspend is true")])
    cond = {c.type: (c.status, c.reason) for c in st.conditions}
    assert st.phase.value == "Suspended" and st.message == "spec.suspend is true: JobSets are suspended"
    assert cond["Suspended"] == ("True", "SuspendedBySpec")
    assert cond["Progressing"] == ("False", "SuspendedBySpec")


def test_size_events_name_each_transition_once():
    sizes = [SizeStatus(width=32, phase=P.failed, message="FailedJobs: boom"),
             SizeStatus(width=64, phase=P.queued, message="waiting"),
             SizeStatus(width=96, phase=P.training)]
    previous = {32: P.training, 96: P.training}
    assert size_events(previous, sizes, started={64}) == [
        PostEvent("Warning", "SizeFailed", "size c32: Training -> Failed (FailedJobs: boom)"),
        PostEvent("Normal", "SizeStarted", "size c64: training JobSet created"),
    ]


def test_experiment_events_a_refusal_once_and_each_phase_change():
    raw = experiment()
    refused = ["spec.training.steps: 600 -> 700"]
    st = status_of(raw, [SizeStatus(width=32, phase=P.training)], refused)
    events = experiment_events(read_experiment(raw), st)
    kinds = [(e.type, e.reason) for e in events]
    assert kinds == [("Warning", "SpecChangeRefused"), ("Normal", "ExperimentRunning")]
    assert events[0].message.startswith("refused: spec.training.steps: 600 -> 700.")
    assert events[1].message == "New -> Running: 0/1 sizes done; training c32"
    raw["status"] = st.to_wire()
    again = status_of(raw, [SizeStatus(width=32, phase=P.training)], refused)
    assert experiment_events(read_experiment(raw), again) == []


def test_the_status_carries_the_estimate_and_what_the_sizes_progress_spent():
    raw = experiment()
    exp = ScalingExperiment.model_validate({k: raw[k] for k in ("apiVersion", "kind", "metadata", "spec")})
    study = estimate(expand(exp))
    steps = exp.spec.training.steps
    # The trainer pods write the step; the operator's own sizes do not carry it.
    raw["status"] = {"phase": "Running", "sizes": [{"width": 64, "step": steps // 2, "totalSteps": steps}]}
    sizes = [SizeStatus(width=32, phase=P.succeeded), SizeStatus(width=64, phase=P.training)]
    st = status_of(raw, sizes)
    cost = owned_wire(st)["cost"]
    assert "step" not in owned_wire(st)["sizes"][1]
    c32, c64 = study.sizes[:2]  # c96 has not started
    assert cost["chipHours"] == pytest.approx(study.chip_hours, rel=1e-3)
    assert cost["spentChipHours"] == pytest.approx(c32.chip_hours + c64.train_chip_hours / 2, rel=1e-3)
    assert cost["storageBytes"] == study.storage_bytes and "pricePerChipHour" not in cost


def test_an_invalid_edit_keeps_the_cost_it_had():
    """The operator's apply must keep owning status.cost while the spec is Invalid: read back,
    kept by invalid_status, applied again (an apply without it would drop it)."""
    from ladder_operator.reconcile import Observed, reconcile

    raw = experiment()
    raw["status"] = reconcile(raw, Observed(workloads={}), NOW).status
    raw["spec"]["ladder"]["widths"] = [32, 64, 50]
    out = reconcile(raw, Observed(workloads={}), NOW)
    assert out.status["phase"] == "Invalid" and out.status["cost"] == raw["status"]["cost"]
