"""The status `ladder run` writes: the custom resource's shape, phases, conditions, frontier."""

from __future__ import annotations

import jsonschema
import pytest

from ladder_api.plan import expand
from ladder_api.status import Result, ScalingExperimentStatus, SizePhase
from ladder_local.observe import SizeObservation
from ladder_local.status_build import SizeActivity, build_status
from ladder_local.tables import render_status
from tests.local.conftest import tiny_experiment

NOW = "2026-01-01T00:00:00Z"


def _plan():
    return expand(tiny_experiment(), root="/out")


def _fid(width, steps, value, cost, guidance=3.0):
    return Result(id=f"c{width}-s6-ddim-n{steps}-g{guidance:g}-fid-digits-classifier", width=width,
                  checkpoint_step=6, sampler="ddim", steps=steps, guidance=guidance,
                  metric="fid-digits-classifier", value=value, num_samples=10, gflops_per_forward=0.1,
                  sampling_cost=cost, sampling_cost_with_guidance=2 * cost)


def test_running_status_has_sizes_results_and_the_frontier():
    plan = _plan()
    obs = {
        8: SizeObservation(8, [4, 6], {"step": 6, "loss": 0.12, "examples_per_s": 50.0},
                           [_fid(8, 2, 9.0, 0.1), _fid(8, 4, 7.0, 0.2)]),
        16: SizeObservation(16, [2], {"step": 3, "loss": 0.5}, []),
    }
    acts = {8: SizeActivity(SizePhase.succeeded), 16: SizeActivity(SizePhase.training)}
    st = build_status(plan, obs, acts, active=True, now=NOW)
    assert st.phase.value == "Running" and st.message == "1/2 sizes done; training c16"
    c8, c16 = st.sizes
    assert (c8.step, c8.checkpoint_step, c8.checkpoint_uri) == (6, 6, "/out/c8/checkpoints/6")
    assert (c16.step, c16.total_steps, c16.loss) == (3, 6, 0.5)
    assert (c8.measurements.recorded, c8.measurements.expected, c8.measurements.best_fid) == (2, 16, 7.0)
    assert (c16.measurements.recorded, c16.measurements.best_fid) == (0, None)
    assert st.summary.measured == "2/32" and st.storage_root == "/out"
    assert st.summary.progress == "1/2" and st.summary.best_width == 8 and st.summary.best_fid == 7.0
    assert [(p.budget, p.steps) for p in st.summary.frontier] == [(0.1, 2), (0.2, 4)]
    assert st.spec_hash == plan.spec_hash
    # the wire form reads back as the resource's status model
    assert ScalingExperimentStatus.model_validate(st.to_wire()) == st


def crd_status_schema() -> dict:
    """The status schema of the CRD the cluster serves, as JSON Schema (unknown fields rejected)."""
    from ladder_api.crd import open_api_schema, to_json_schema

    return to_json_schema(open_api_schema()["properties"]["status"], forbid_unknown=True)


def test_status_validates_against_the_crd_status_schema():
    plan = _plan()
    st = build_status(plan, {}, {}, active=False, now=NOW)
    jsonschema.validate(st.to_wire(), crd_status_schema())
    assert st.phase.value == "Pending" and [s.phase for s in st.sizes] == [SizePhase.pending] * 2
    full = build_status(plan, {8: SizeObservation(8, [6], {"step": 6, "loss": 0.1}, [_fid(8, 2, 9.0, 0.1)])},
                        {8: SizeActivity(SizePhase.succeeded, "done")}, active=False, now=NOW)
    jsonschema.validate(full.to_wire(), crd_status_schema())
    bad = full.to_wire() | {"sizes": [{"width": 8, "phase": "Sleeping"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, crd_status_schema())


def test_a_resumed_size_reports_its_checkpoint_step_before_it_logs():
    st = build_status(_plan(), {8: SizeObservation(8, [4], None, [])},
                      {8: SizeActivity(SizePhase.training)}, active=True, now=NOW)
    assert st.sizes[0].step == 4


def test_conditions_keep_their_transition_time_until_they_change():
    plan = _plan()
    running = {8: SizeActivity(SizePhase.training)}
    first = build_status(plan, {}, running, active=True, now="T1")
    again = build_status(plan, {}, running, active=True, now="T2", previous=first)
    cond = {c.type: c for c in again.conditions}
    assert cond["Progressing"].status == "True" and cond["Progressing"].last_transition_time == "T1"
    done = {8: SizeActivity(SizePhase.succeeded), 16: SizeActivity(SizePhase.succeeded)}
    last = build_status(plan, {}, done, active=False, now="T3", previous=again)
    cond = {c.type: c for c in last.conditions}
    assert cond["Ready"].status == "True" and cond["Ready"].last_transition_time == "T3"
    assert cond["Progressing"].status == "False" and cond["Progressing"].last_transition_time == "T3"


def test_failure_and_suspension_messages():
    plan = _plan()
    st = build_status(plan, {}, {8: SizeActivity(SizePhase.failed, "train exited with code 1"),
                                 16: SizeActivity(SizePhase.suspended)}, active=False, now=NOW,
                      interrupted=True)
    assert st.phase.value == "Suspended" and "ladder run" in st.message
    cond = {c.type: c for c in st.conditions}
    assert (cond["Suspended"].status, cond["Suspended"].reason) == ("True", "Interrupted")
    assert (cond["Degraded"].status, cond["Degraded"].reason) == ("True", "SizeFailed")
    st = build_status(plan, {}, {8: SizeActivity(SizePhase.failed, "train exited with code 1"),
                                 16: SizeActivity(SizePhase.succeeded)}, active=False, now=NOW)
    assert st.phase.value == "Failed" and st.message == "1 of 2 sizes failed: c8: train exited with code 1"
    cond = {c.type: c for c in st.conditions}
    assert (cond["Degraded"].status, cond["Degraded"].reason) == ("True", "SizeFailed")
    assert cond["Degraded"].message == "c8: train exited with code 1"
    assert (cond["Ready"].status, cond["Ready"].reason) == ("False", "SizeFailed")
    assert (cond["Progressing"].status, cond["Progressing"].reason) == ("False", "SizeFailed")


def test_status_table_reads_like_kubectl_get():
    plan = _plan()
    results = [_fid(8, 2, 9.0, 0.1), _fid(8, 4, 7.0, 0.2)]
    obs = {8: SizeObservation(8, [6], {"step": 6, "loss": 0.1234567}, results)}
    st = build_status(plan, obs, {8: SizeActivity(SizePhase.evaluating), 16: SizeActivity(SizePhase.pending)},
                      active=True, now=NOW)
    text = render_status("tiny", st, {8: 16, 16: 16})
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["NAME", "PHASE", "SIZES", "BEST-FID"]
    assert lines[1].split()[:6] == ["tiny", "Running", "0/2", "7.000", "c8", "fid-digits-classifier"]
    row8 = next(ln for ln in lines if ln.startswith("c8 "))
    assert row8.split()[:6] == ["c8", "Evaluating", "6/6", "0.1235", "-", "6"] and "2/16" in row8
    assert "Frontier" in text and any(ln.split()[:3] == ["0.2", "c8", "ddim"] for ln in lines)
