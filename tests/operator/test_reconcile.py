"""reconcile() is pure: these tests feed it observed states and read its decisions."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from ladder_operator.reconcile import (
    EVAL_HASH_ANNOTATION,
    FINALIZER,
    RETRY_ANNOTATION,
    STATE_ANNOTATION,
    ApplyShared,
    CleanupCheckpoints,
    Create,
    Delete,
    Observed,
    PostEvent,
    RecordState,
    RemoveAnnotation,
    SetFinalizers,
    SetSuspend,
    reconcile,
)

NOW = "2026-01-01T00:00:00Z"


def experiment(**spec_changes) -> dict:
    exp = yaml.safe_load((Path(__file__).parent / "tiny.yaml").read_text())
    exp["metadata"].update(namespace="ns", uid="uid-1", generation=1, resourceVersion="10")
    for path, value in spec_changes.items():
        cur = exp["spec"]
        parts = path.split("__")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value
    return exp


def run_once(exp, observed=None):
    return reconcile(exp, observed or Observed(workloads={}), NOW)


def after(exp: dict, outcome) -> dict:
    """The experiment as the API server would hold it after the operator's writes."""
    exp = copy.deepcopy(exp)
    for a in outcome.actions:
        if isinstance(a, RecordState):
            exp["metadata"].setdefault("annotations", {})[STATE_ANNOTATION] = json.dumps(a.state)
        if isinstance(a, SetFinalizers):
            exp["metadata"]["finalizers"] = list(a.finalizers)
    exp["status"] = {**(exp.get("status") or {}), **outcome.status}
    return exp


def creates(outcome) -> list[str]:
    return [a.obj["metadata"]["name"] for a in outcome.actions if isinstance(a, Create)]


def jobset(name: str, state: str = "active", restarts: int = 0, suspend: bool = False, **annotations) -> dict:
    conds = {
        "completed": [{"type": "Completed", "status": "True"}],
        "failed": [{"type": "Failed", "status": "True", "reason": "FailedJobs", "message": "boom"}],
    }
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"suspend": suspend},
        "status": {"restarts": restarts, "conditions": conds.get(state, [])},
    }


def test_starts_max_concurrent_sizes_in_order_and_records_intent_first():
    out = run_once(experiment())
    assert creates(out) == ["quickstart-c32", "quickstart-c64"]
    kinds = [type(a) for a in out.actions]
    assert kinds.index(RecordState) < kinds.index(ApplyShared) < kinds.index(Create)
    state = next(a.state for a in out.actions if isinstance(a, RecordState))
    assert set(state["started"]) == {"32", "64"}
    js = next(a.obj for a in out.actions if isinstance(a, Create))
    assert js["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert [s["phase"] for s in out.status["sizes"]] == ["Queued", "Queued", "Pending"]


def test_same_inputs_same_decision():
    exp = experiment()
    assert run_once(exp) == run_once(copy.deepcopy(exp))


def test_restart_after_intent_recreates_only_the_recorded_sizes():
    exp = experiment()
    exp1 = after(exp, run_once(exp))
    # The JobSets were never created (crash between the annotation and the POSTs).
    out = run_once(exp1)
    assert creates(out) == ["quickstart-c32", "quickstart-c64"]
    # They exist now: nothing to do, no events, no state write.
    observed = Observed(jobsets={n: jobset(n) for n in creates(out)}, workloads={})
    out2 = run_once(exp1, observed)
    assert out2.actions == [] or all(isinstance(a, PostEvent) for a in out2.actions)


def test_phases_follow_kueue_and_jobset_status():
    exp = after(experiment(), run_once(experiment()))
    admitted = {
        "status": {"admission": {"clusterQueue": "q"}},
        "spec": {"active": True},
        "metadata": {"name": "w"},
    }
    pending = {"status": {}, "spec": {"active": True}, "metadata": {"name": "w2"}}
    obs = Observed(
        jobsets={"quickstart-c32": jobset("quickstart-c32"), "quickstart-c64": jobset("quickstart-c64")},
        workloads={"quickstart-c32": admitted, "quickstart-c64": pending},
    )
    out = run_once(exp, obs)
    assert [s["phase"] for s in out.status["sizes"]] == ["Training", "Queued", "Pending"]
    # Without Kueue the JobSet's own state decides.
    out = run_once(exp, Observed(jobsets=obs.jobsets, workloads=None))
    assert [s["phase"] for s in out.status["sizes"]] == ["Training", "Training", "Pending"]


def test_completion_starts_evaluation_and_the_next_size():
    exp = after(experiment(), run_once(experiment()))
    obs = Observed(
        jobsets={
            "quickstart-c32": jobset("quickstart-c32", "completed"),
            "quickstart-c64": jobset("quickstart-c64"),
        },
        workloads={},
    )
    out = run_once(exp, obs)
    assert set(creates(out)) == {"quickstart-c32-eval", "quickstart-c96"}
    ev = next(
        a.obj for a in out.actions if isinstance(a, Create) and a.obj["metadata"]["name"].endswith("eval")
    )
    assert ev["metadata"]["annotations"][EVAL_HASH_ANNOTATION]
    assert out.status["sizes"][0]["phase"] == "Evaluating"
    assert any(isinstance(a, PostEvent) and a.reason == "SizeEvaluating" for a in out.actions)


def test_finished_sizes_are_remembered_after_their_jobsets_expire():
    exp = after(experiment(), run_once(experiment()))
    obs = Observed(
        jobsets={
            "quickstart-c32": jobset("quickstart-c32", "completed"),
            "quickstart-c64": jobset("quickstart-c64"),
        },
        workloads={},
    )
    exp = after(exp, run_once(exp, obs))
    e_hash = next(
        a.obj
        for a in run_once(exp, obs).actions
        if isinstance(a, Create) and a.obj["metadata"]["name"].endswith("eval")
    )["metadata"]["annotations"][EVAL_HASH_ANNOTATION]
    obs.jobsets["quickstart-c32-eval"] = jobset(
        "quickstart-c32-eval", "completed", **{EVAL_HASH_ANNOTATION: e_hash}
    )
    exp = after(exp, run_once(exp, obs))
    assert exp["status"]["sizes"][0]["phase"] == "Succeeded"
    # ttlSecondsAfterFinished removed both JobSets of c32: still Succeeded, nothing re-created.
    del obs.jobsets["quickstart-c32"], obs.jobsets["quickstart-c32-eval"]
    out = run_once(exp, obs)
    assert out.status["sizes"][0]["phase"] == "Succeeded"
    assert "quickstart-c32" not in creates(out) and "quickstart-c32-eval" not in creates(out)


def test_a_wider_evaluation_grid_re_evaluates_finished_sizes():
    exp = after(experiment(), run_once(experiment()))
    obs = Observed(
        jobsets={
            "quickstart-c32": jobset("quickstart-c32", "completed"),
            "quickstart-c64": jobset("quickstart-c64"),
        },
        workloads={},
    )
    exp = after(exp, run_once(exp, obs))
    obs.jobsets["quickstart-c32-eval"] = jobset(
        "quickstart-c32-eval", "completed", **{EVAL_HASH_ANNOTATION: "old-grid"}
    )
    exp["spec"]["evaluation"]["steps"] = [4, 8, 16, 32]
    out = run_once(exp, obs)
    assert Delete("jobset.x-k8s.io/v1alpha2", "jobsets", "quickstart-c32-eval") in out.actions
    assert out.status["sizes"][0]["phase"] == "Evaluating"


def test_failure_reports_reason_and_restarts():
    exp = after(experiment(scheduling__maxConcurrent=1), run_once(experiment(scheduling__maxConcurrent=1)))
    obs = Observed(jobsets={"quickstart-c32": jobset("quickstart-c32", "failed", restarts=3)}, workloads={})
    out = run_once(exp, obs)
    size = out.status["sizes"][0]
    assert size["phase"] == "Failed" and size["restarts"] == 3 and "FailedJobs: boom" in size["message"]
    assert creates(out) == ["quickstart-c64"], "the slot is freed"
    degraded = next(c for c in out.status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "SizeFailed"


def test_recipe_edits_are_refused_with_the_field_named():
    exp = after(experiment(scheduling__maxConcurrent=1), run_once(experiment(scheduling__maxConcurrent=1)))
    obs = Observed(jobsets={"quickstart-c32": jobset("quickstart-c32", "completed")}, workloads={})
    exp["spec"]["training"]["steps"] = 700
    exp["spec"]["ladder"]["numHeads"] = 2
    out = run_once(exp, obs)
    degraded = next(c for c in out.status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "SpecChangeRefused"
    assert "spec.training.steps: 600 -> 700" in degraded["message"]
    assert "spec.ladder.numHeads: 4 -> 2" in degraded["message"]
    assert creates(out) == [], "nothing new starts and nothing is re-created"
    assert not any(isinstance(a, (Delete, SetSuspend)) for a in out.actions)


def _started_with_slots(exp):
    """Both first sizes started, as the operator recorded them."""
    exp = after(exp, run_once(exp))
    obs = Observed(
        jobsets={"quickstart-c32": jobset("quickstart-c32"), "quickstart-c64": jobset("quickstart-c64")},
        workloads={},
    )
    return exp, obs


def _refused(out) -> bool:
    degraded = next(c for c in out.status["conditions"] if c["type"] == "Degraded")
    return degraded["reason"] == "SpecChangeRefused"


def test_sharding_edits_after_start_are_accepted_as_ladder_run_accepts_them():
    """Sharding says where the math runs, not what is trained (ladder_api.recipe); `ladder run`
    applies the same rule (tests/local/test_decisions.py)."""
    exp, obs = _started_with_slots(experiment())
    exp["spec"]["training"]["sharding"] = {"fsdp": 2}
    assert not _refused(run_once(exp, obs))
    exp["spec"]["resources"] = {"slices": [{"sliceType": "v5litepod-16", "sharding": {"fsdp": 4}}]}
    assert not _refused(run_once(exp, obs))
    exp["spec"]["training"]["learningRate"] = 0.004
    assert _refused(run_once(exp, obs))


def test_a_recipe_recorded_by_an_older_operator_is_not_refused_after_an_upgrade():
    """Operators before ladder_api.recipe recorded nested wire sections, non-recipe fields
    included; the upgraded operator compares only the recipe fields."""
    exp, obs = _started_with_slots(experiment())
    state = json.loads(exp["metadata"]["annotations"][STATE_ANNOTATION])
    old_style = {"ladder": {"contextDim": 32, "contextTokens": 4, "channelMult": [1, 2], "numResBlocks": 1,
                            "attentionLevels": [1], "numHeads": 4, "transformerDepth": 1, "normGroups": 8,
                            "latentChannels": 1, "latentSize": 8}}
    flat = state["recipe"]
    old_style["data"] = {}
    old_style["training"] = {"sharding": {"data": -1, "fsdp": 1}, "logEverySteps": 50}
    for key, value in flat.items():
        section, _, rest = key.partition(".")
        if section in ("data", "training"):
            cur = old_style[section]
            *parents, last = rest.split(".")
            for p in parents:
                cur = cur.setdefault(p, {})
            cur[last] = value
    state["recipe"] = old_style
    exp["metadata"]["annotations"][STATE_ANNOTATION] = json.dumps(state)
    assert not _refused(run_once(exp, obs))
    old_style["training"]["learningRate"] = 0.001
    exp["metadata"]["annotations"][STATE_ANNOTATION] = json.dumps(state)
    out = run_once(exp, obs)
    assert _refused(out)
    degraded = next(c for c in out.status["conditions"] if c["type"] == "Degraded")
    assert "spec.training.learningRate: 0.001 -> 0.002" in degraded["message"]


def test_non_recipe_edits_are_accepted():
    exp = after(experiment(), run_once(experiment()))
    exp["spec"]["scheduling"] = {"maxConcurrent": 3}
    exp["spec"]["ladder"]["widths"] = [32, 64, 96, 128]
    obs = Observed(
        jobsets={"quickstart-c32": jobset("quickstart-c32"), "quickstart-c64": jobset("quickstart-c64")},
        workloads={},
    )
    out = run_once(exp, obs)
    assert creates(out) == ["quickstart-c96"]
    assert any(isinstance(a, ApplyShared) for a in out.actions), "the ConfigMap gains the new run"


def test_suspend_suspends_jobsets_and_deactivates_workloads_then_resumes():
    exp = after(experiment(), run_once(experiment()))
    wl = {"metadata": {"name": "wl-32"}, "spec": {"active": True}, "status": {"admission": {}}}
    obs = Observed(jobsets={"quickstart-c32": jobset("quickstart-c32")}, workloads={"quickstart-c32": wl})
    exp["spec"]["suspend"] = True
    out = run_once(exp, obs)
    assert SetSuspend("jobset", "quickstart-c32", True) in out.actions
    assert SetSuspend("workload", "wl-32", True) in out.actions
    assert out.phase == "Suspended" and creates(out) == []
    exp["spec"]["suspend"] = False
    wl["spec"]["active"] = False
    obs.jobsets["quickstart-c32"]["spec"]["suspend"] = True
    out = run_once(exp, obs)
    assert SetSuspend("workload", "wl-32", False) in out.actions
    assert SetSuspend("jobset", "quickstart-c32", False) not in out.actions, "Kueue unsuspends on admission"
    out = run_once(exp, Observed(jobsets=obs.jobsets, workloads=None))
    assert SetSuspend("jobset", "quickstart-c32", False) in out.actions, "without Kueue the operator does"


def test_invalid_spec_gets_invalid_phase_and_one_event():
    exp = experiment(training__learningRate=-1)
    out = run_once(exp)
    assert out.phase == "Invalid" and "spec.training.learningRate" in out.status["message"]
    assert [a.reason for a in out.actions if isinstance(a, PostEvent)] == ["InvalidSpec"]
    out2 = run_once(after(exp, out))
    assert out2.actions == [], "no second event, no retry"


def test_retention_delete_adds_a_finalizer_and_cleans_up_on_deletion():
    exp = experiment(training__checkpoint__retention="delete")
    out = run_once(exp)
    assert SetFinalizers((FINALIZER,)) in out.actions
    exp = after(exp, out)
    exp["metadata"]["deletionTimestamp"] = NOW
    out = run_once(exp)
    uris = tuple(f"./ladder-runs/quickstart/c{w}/checkpoints" for w in (32, 64, 96))
    assert out.actions == [CleanupCheckpoints(uris), SetFinalizers(())]
    # Retention back to keep: the finalizer goes, nothing is deleted.
    exp = after(
        experiment(training__checkpoint__retention="delete"),
        run_once(experiment(training__checkpoint__retention="delete")),
    )
    exp["spec"]["training"]["checkpoint"]["retention"] = "keep"
    assert SetFinalizers(()) in run_once(exp).actions


def test_condition_times_only_move_on_transitions():
    exp = after(experiment(), run_once(experiment()))
    out = reconcile(exp, Observed(workloads={}), "2030-01-01T00:00:00Z")
    assert all(c["lastTransitionTime"] == NOW for c in out.status["conditions"])


def test_the_status_written_fits_the_status_schema():
    """The CRD's status schema is generated from this model: a field outside it would be pruned
    silently by a real API server."""
    from ladder_api.status import ScalingExperimentStatus

    exp = after(experiment(), run_once(experiment()))
    obs = Observed(
        jobsets={
            "quickstart-c32": jobset("quickstart-c32", "completed"),
            "quickstart-c64": jobset("quickstart-c64", "failed", restarts=2),
        },
        workloads={},
    )
    for out in (run_once(exp, obs), run_once(experiment(training__learningRate=-1))):
        ScalingExperimentStatus.model_validate(out.status)


def test_retry_annotation_restarts_failed_sizes_within_max_concurrent():
    exp = after(experiment(scheduling__maxConcurrent=1), run_once(experiment(scheduling__maxConcurrent=1)))
    obs = Observed(jobsets={"quickstart-c32": jobset("quickstart-c32", "failed", restarts=3)}, workloads={})
    exp = after(exp, run_once(exp, obs))  # c32 Failed, c64 started
    obs.jobsets["quickstart-c64"] = jobset("quickstart-c64")
    exp["metadata"]["annotations"][RETRY_ANNOTATION] = "1"
    out = run_once(exp, obs)
    assert Delete("jobset.x-k8s.io/v1alpha2", "jobsets", "quickstart-c32") in out.actions
    assert RemoveAnnotation(RETRY_ANNOTATION) in out.actions
    assert out.status["sizes"][0]["phase"] == "Pending", "queued behind the running c64"
    assert creates(out) == []
    # c64 finishes: c32 starts again (its JobSet is new; restarts count from zero).
    exp = after(exp, out)
    del exp["metadata"]["annotations"][RETRY_ANNOTATION]
    del obs.jobsets["quickstart-c32"]
    obs.jobsets["quickstart-c64"] = jobset("quickstart-c64", "completed")
    out = run_once(exp, obs)
    assert "quickstart-c32" in creates(out)
    assert out.status["sizes"][0]["restarts"] == 0


def test_retry_of_a_failed_evaluation_evaluates_again_without_retraining():
    exp = after(experiment(), run_once(experiment()))
    obs = Observed(
        jobsets={
            "quickstart-c32": jobset("quickstart-c32", "completed"),
            "quickstart-c64": jobset("quickstart-c64"),
            "quickstart-c32-eval": jobset("quickstart-c32-eval", "failed"),
        },
        workloads={},
    )
    exp = after(exp, run_once(exp, obs))
    assert exp["status"]["sizes"][0]["phase"] == "Failed"
    exp["metadata"]["annotations"][RETRY_ANNOTATION] = "1"
    del obs.jobsets["quickstart-c32"]  # training JobSet expired meanwhile
    out = run_once(exp, obs)
    assert Delete("jobset.x-k8s.io/v1alpha2", "jobsets", "quickstart-c32-eval") in out.actions
    assert "quickstart-c32" not in creates(out)
    del obs.jobsets["quickstart-c32-eval"]
    out = run_once(after(exp, out), obs)
    assert "quickstart-c32-eval" in creates(out) and "quickstart-c32" not in creates(out)


def test_jobset_annotations_stand_in_for_a_lost_state_annotation():
    exp = experiment(scheduling__maxConcurrent=1)
    first = run_once(exp)
    js = next(a.obj for a in first.actions if isinstance(a, Create))
    obs = Observed(jobsets={"quickstart-c32": js}, workloads={})
    exp["spec"]["training"]["steps"] = 700  # no state annotation on exp: it was removed
    out = run_once(exp, obs)
    degraded = next(c for c in out.status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "SpecChangeRefused" and "c32" in degraded["message"]
    assert creates(out) == []
