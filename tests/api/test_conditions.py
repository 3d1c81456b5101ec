"""The one rule set for the experiment's phase, message, conditions and summary (both backends)."""

from __future__ import annotations

import jsonschema
import pytest

from ladder_api.conditions import (
    Circumstances,
    Preparation,
    Reason,
    Suspension,
    experiment_message,
    experiment_phase,
    experiment_status,
    invalid_status,
)
from ladder_api.crd import open_api_schema, to_json_schema
from ladder_api.digest import compute
from ladder_api.grid import ranking_fid
from ladder_api.plan import expand
from ladder_api.spec import EvaluationSpec, ScalingExperiment
from ladder_api.status import ExperimentPhase, Result, SizePhase, SizeStatus, result_id

S = SizePhase
SPEC_SUSPEND = Suspension(Reason.suspended_by_spec, "spec.suspend is true: JobSets are suspended")
INTERRUPTED = Suspension(Reason.interrupted, "interrupted; run it again to resume")
EVAL = EvaluationSpec(metrics=["fid", "clip"], fid_features="digits-classifier")


def sizes(*phases: SizePhase, messages: dict[int, str] | None = None) -> list[SizeStatus]:
    messages = messages or {}
    return [SizeStatus(width=32 * (i + 1), phase=p, message=messages.get(32 * (i + 1)))
            for i, p in enumerate(phases)]


def by_type(status) -> dict:
    return {c.type: (c.status, c.reason, c.message) for c in status.conditions}


@pytest.mark.parametrize(
    ("phases", "circumstances", "expected"),
    [
        ((S.succeeded, S.succeeded), Circumstances(), "Succeeded"),
        ((S.succeeded, S.succeeded), Circumstances(suspension=SPEC_SUSPEND), "Succeeded"),
        ((S.succeeded, S.failed), Circumstances(), "Failed"),
        ((S.succeeded, S.failed), Circumstances(suspension=SPEC_SUSPEND), "Suspended"),
        ((S.failed, S.training), Circumstances(), "Running"),
        ((S.failed, S.pending), Circumstances(), "Running"),  # the pending one still gets its turn
        ((S.failed, S.pending), Circumstances(active=False), "Failed"),  # nobody will run it
        ((S.succeeded, S.pending), Circumstances(), "Running"),
        ((S.pending, S.queued), Circumstances(), "Pending"),
        ((S.pending, S.queued), Circumstances(refused=("spec.training.steps: 1 -> 2",)), "Running"),
        ((S.pending, S.pending), Circumstances(active=False), "Pending"),
        ((S.succeeded, S.suspended), Circumstances(suspension=INTERRUPTED, active=False), "Suspended"),
        ((S.training, S.suspended), Circumstances(), "Running"),
    ],
)
def test_experiment_phase_rules(phases, circumstances, expected):
    assert experiment_phase(sizes(*phases), circumstances) is ExperimentPhase(expected)


def test_messages_name_the_sizes_and_change_only_with_phases():
    running = sizes(S.succeeded, S.training, S.training, S.evaluating)
    assert experiment_message(ExperimentPhase.running, running) == (
        "1/4 sizes done; training c64, c96; evaluating c128"
    )
    failed = sizes(S.failed, S.succeeded, S.failed, messages={32: "FailedJobs: boom (restarts: 3)"})
    assert experiment_message(ExperimentPhase.failed, failed) == (
        "2 of 3 sizes failed: c32: FailedJobs: boom (restarts: 3); c96: failed"
    )
    pending = experiment_message(ExperimentPhase.pending, sizes(S.queued))
    assert pending == "waiting for the first size to start"
    assert experiment_message(ExperimentPhase.succeeded, sizes(S.succeeded)) == (
        "all 1 sizes trained and evaluated"
    )
    held = Circumstances(suspension=SPEC_SUSPEND)
    assert experiment_message(ExperimentPhase.suspended, sizes(S.suspended), held) == SPEC_SUSPEND.message


def test_running_conditions():
    st = experiment_status(sizes(S.succeeded, S.training, S.pending), now="T", generation=3)
    assert st.phase is ExperimentPhase.running and st.message == "1/3 sizes done; training c64"
    assert by_type(st) == {
        "Ready": ("False", "SizesRemaining", "1/3 sizes done; training c64"),
        "Progressing": ("True", "SizesRunning", "c32 Succeeded, c64 Training, c96 Pending"),
        "Degraded": ("False", "AsExpected", ""),
        "Suspended": ("False", "NotSuspended", ""),
    }
    assert [c.type for c in st.conditions] == ["Ready", "Progressing", "Degraded", "Suspended"]
    assert {c.observed_generation for c in st.conditions} == {3} and st.observed_generation == 3


def test_succeeded_conditions():
    st = experiment_status(sizes(S.succeeded, S.succeeded), now="T")
    assert by_type(st) == {
        "Ready": ("True", "AllSizesEvaluated", "all 2 sizes trained and evaluated"),
        "Progressing": ("False", "AllSizesEvaluated", "c32 Succeeded, c64 Succeeded"),
        "Degraded": ("False", "AsExpected", ""),
        "Suspended": ("False", "NotSuspended", ""),
    }


@pytest.mark.parametrize("suspension", [SPEC_SUSPEND, INTERRUPTED])
def test_suspended_conditions_carry_the_backends_reason(suspension):
    st = experiment_status(sizes(S.succeeded, S.suspended), now="T",
                           circumstances=Circumstances(suspension=suspension))
    assert st.phase is ExperimentPhase.suspended and st.message == suspension.message
    assert by_type(st) == {
        "Ready": ("False", suspension.reason.value, suspension.message),
        "Progressing": ("False", suspension.reason.value, "c32 Succeeded, c64 Suspended"),
        "Degraded": ("False", "AsExpected", ""),
        "Suspended": ("True", suspension.reason.value, suspension.message),
    }


def test_a_refused_edit_stops_progress_and_names_the_fields():
    refused = ("spec.training.learningRate: 0.002 -> 0.004",)
    st = experiment_status(sizes(S.training, S.pending), now="T",
                           circumstances=Circumstances(refused=refused))
    cond = by_type(st)
    assert st.phase is ExperimentPhase.running
    assert cond["Progressing"] == ("False", "SpecChangeRefused", "c32 Training, c64 Pending")
    assert cond["Degraded"][:2] == ("True", "SpecChangeRefused")
    assert cond["Degraded"][2].startswith("refused: spec.training.learningRate: 0.002 -> 0.004. ")


def test_an_object_the_api_server_refused_stops_progress_and_says_why():
    why = 'the API server refused JobSet x-c32: JobSet.jobset.x-k8s.io "x-c32" is invalid: bad label'
    st = experiment_status(sizes(S.failed, S.pending), now="T",
                           circumstances=Circumstances(rejected=why))
    cond = by_type(st)
    assert cond["Degraded"] == ("True", "ObjectRejected", why), "before the failed size: it blocks all"
    assert cond["Progressing"][:2] == ("False", "ObjectRejected")


def test_failed_and_held_sizes_degrade_the_experiment():
    st = experiment_status(sizes(S.failed, S.training, messages={32: "FailedJobs: boom"}), now="T")
    assert by_type(st)["Degraded"] == ("True", "SizeFailed", "c32: FailedJobs: boom")
    held = sizes(S.suspended, S.training, messages={32: "Kueue deactivated its Workload"})
    st = experiment_status(held, now="T")
    assert st.phase is ExperimentPhase.running
    assert by_type(st)["Degraded"] == ("True", "SizeSuspended", "c32: Kueue deactivated its Workload")


PREPARING = Preparation(failed=False, message="preparing data: JobSet sx-prepare, 4 workers")
PREPARE_FAILED = Preparation(failed=True, message="PodFailurePolicy: worker 2 exited 2")


def test_preparing_comes_before_any_size_and_a_failed_preparation_fails_the_experiment():
    st = experiment_status(sizes(S.pending, S.pending), now="T",
                           circumstances=Circumstances(preparation=PREPARING))
    assert st.phase is ExperimentPhase.preparing and st.message == PREPARING.message
    assert by_type(st) == {
        "Ready": ("False", "PreparingData", PREPARING.message),
        "Progressing": ("True", "PreparingData", "c32 Pending, c64 Pending"),
        "Degraded": ("False", "AsExpected", ""),
        "Suspended": ("False", "NotSuspended", ""),
    }
    held = Circumstances(preparation=PREPARING, suspension=SPEC_SUSPEND)
    assert experiment_phase(sizes(S.pending), held) is ExperimentPhase.suspended
    st = experiment_status(sizes(S.pending, S.pending), now="T",
                           circumstances=Circumstances(preparation=PREPARE_FAILED, suspension=SPEC_SUSPEND))
    assert st.phase is ExperimentPhase.failed
    assert st.message == "data preparation failed: PodFailurePolicy: worker 2 exited 2"
    assert by_type(st)["Degraded"] == ("True", "PrepareFailed", PREPARE_FAILED.message)
    assert by_type(st)["Ready"][:2] == ("False", "PrepareFailed")
    assert by_type(st)["Progressing"][:2] == ("False", "PrepareFailed")


def test_transition_times_move_only_when_a_status_flips():
    first = experiment_status(sizes(S.training, S.pending), now="T1")
    again = experiment_status(sizes(S.training, S.evaluating), now="T2", previous=first)
    assert {c.last_transition_time for c in again.conditions} == {"T1"}, "statuses unchanged"
    done = experiment_status(sizes(S.succeeded, S.succeeded), now="T3", previous=again)
    times = {c.type: c.last_transition_time for c in done.conditions}
    assert times == {"Ready": "T3", "Progressing": "T3", "Degraded": "T1", "Suspended": "T1"}


def _fid(width, metric, value):
    return Result(id=result_id(width, 10, "ddim", 4, 1.0, metric), width=width, checkpoint_step=10,
                  sampler="ddim", steps=4, guidance=1.0, metric=metric, value=value, num_samples=10,
                  gflops_per_forward=1.0, sampling_cost=4.0 * width, sampling_cost_with_guidance=4.0 * width)


def _digest(results):
    """The digest of `results` for widths 32 and 64 on a one-point grid of EVAL's metrics."""
    exp = ScalingExperiment.model_validate({"metadata": {"name": "x"}, "spec": {
        "ladder": {"widths": [32, 64]}, "training": {"steps": 10, "lrSchedule": {"warmupSteps": 0}},
        "evaluation": {**EVAL.to_wire(), "samplers": ["ddim"], "steps": [4], "guidanceScales": [1.0]}}})
    plan = expand(exp)
    return compute(plan.runs, {w: [r for r in results if r.width == w] for w in (32, 64)})


def test_the_summary_ranks_by_the_fid_the_spec_measures():
    """fid-inception would win the results-only choice; the spec says digits-classifier."""
    results = [_fid(32, "fid-inception", 1.0), _fid(32, "fid-digits-classifier", 9.0),
               _fid(64, "fid-digits-classifier", 5.0)]
    st = experiment_status(sizes(S.succeeded, S.succeeded), _digest(results), now="T")
    assert st.summary.fid_metric == "fid-digits-classifier"
    assert (st.summary.best_fid, st.summary.best_width, st.summary.progress) == (5.0, 64, "2/2")
    assert ranking_fid(EvaluationSpec(metrics=["fid"])) == "fid-inception"
    assert ranking_fid(EvaluationSpec(metrics=["clip"])) is None


def test_an_invalid_spec_keeps_what_is_known():
    known = _digest([_fid(32, "fid-digits-classifier", 3.0)])
    before = experiment_status(sizes(S.succeeded, S.training), known,
                               now="T1", generation=1, spec_hash="abc", images={"trainer": "t:1"})
    st = invalid_status("spec.ladder.widths: 50 is not a multiple of 16", before, now="T2", generation=2)
    assert st.phase is ExperimentPhase.invalid and st.observed_generation == 2
    assert st.sizes == before.sizes and st.summary == before.summary
    assert st.sizes[0].measurements.recorded == 1 and st.summary.best_fid == 3.0
    assert (st.spec_hash, st.images) == ("abc", {"trainer": "t:1"})
    message = "spec.ladder.widths: 50 is not a multiple of 16"
    assert by_type(st) == {
        "Ready": ("False", "InvalidSpec", message),
        "Progressing": ("False", "InvalidSpec", "fix the spec; nothing runs until then"),
        "Degraded": ("True", "InvalidSpec", message),
        "Suspended": ("False", "NotSuspended", ""),
    }
    times = {c.type: c.last_transition_time for c in st.conditions}
    assert times == {"Ready": "T1", "Progressing": "T2", "Degraded": "T2", "Suspended": "T1"}
    assert invalid_status("bad", None, now="T").sizes == []


def test_every_status_fits_the_crd_status_schema():
    schema = to_json_schema(open_api_schema()["properties"]["status"], forbid_unknown=True)
    results = [_fid(32, "fid-digits-classifier", 3.0)]
    cases = [
        experiment_status(sizes(S.succeeded, S.failed), _digest(results), now="T", generation=1),
        experiment_status(sizes(S.suspended), now="T",
                          circumstances=Circumstances(suspension=INTERRUPTED, active=False)),
        experiment_status(sizes(S.queued), now="T", circumstances=Circumstances(refused=("x",))),
    ]
    cases.append(invalid_status("bad", cases[0], now="T", generation=2))
    for st in cases:
        jsonschema.validate(st.to_wire(), schema)
