"""reconcile() end to end (the driver over all steps): observed states in, actions and the status
values out. Each step has its own tests under tests/operator/reconcile/."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from ladder_api.recipe import LEGACY
from ladder_operator.labels import RECIPE_HASH
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


OPERATOR_OWNED = ("phase", "message", "observedGeneration", "specHash", "codeVersion", "images", "conditions",
                  "sizes", "summary")


def after(exp: dict, outcome) -> dict:
    """The experiment as the API server would hold it after the operator's writes. The status is
    applied as server-side apply does for one field manager: a field the operator owned and left
    out of its apply is deleted (pods' fields, here `results`, stay)."""
    exp = copy.deepcopy(exp)
    for a in outcome.actions:
        if isinstance(a, RecordState):
            exp["metadata"].setdefault("annotations", {})[STATE_ANNOTATION] = json.dumps(a.state)
        if isinstance(a, SetFinalizers):
            exp["metadata"]["finalizers"] = list(a.finalizers)
    kept = {k: v for k, v in (exp.get("status") or {}).items() if k not in OPERATOR_OWNED}
    exp["status"] = {**kept, **outcome.status}
    return exp


def phases(outcome) -> dict[int, tuple[str, str | None]]:
    return {s["width"]: (s["phase"], s.get("message")) for s in outcome.status["sizes"]}


def conditions(outcome) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in outcome.status["conditions"]}


def events(outcome) -> list[tuple[str, str]]:
    return [(a.reason, a.message) for a in outcome.actions if isinstance(a, PostEvent)]


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
    queued = ("Queued", "waiting for Kueue to admit it in queue 'ladder'")
    assert phases(out) == {32: queued, 64: queued, 96: ("Pending", None)}
    assert (out.phase, out.status["message"]) == ("Pending", "waiting for the first size to start")
    assert conditions(out) == {"Ready": ("False", "SizesRemaining"), "Progressing": ("True", "SizesRunning"),
                               "Degraded": ("False", "AsExpected"), "Suspended": ("False", "NotSuspended")}
    assert events(out) == [
        ("SizeStarted", "size c32: training JobSet created"),
        ("SizeStarted", "size c64: training JobSet created"),
        ("ExperimentPending", "New -> Pending: waiting for the first size to start"),
    ]


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
    queued = ("Queued", "waiting for Kueue to admit it in queue 'ladder'")
    assert phases(out) == {32: ("Training", None), 64: queued, 96: ("Pending", None)}
    assert (out.phase, out.status["message"]) == ("Running", "0/3 sizes done; training c32")
    assert events(out) == [
        ("SizeTraining", "size c32: Queued -> Training"),
        ("ExperimentRunning", "Pending -> Running: 0/3 sizes done; training c32"),
    ]
    # Without Kueue the JobSet's own state decides.
    out = run_once(exp, Observed(jobsets=obs.jobsets, workloads=None))
    assert phases(out) == {32: ("Training", None), 64: ("Training", None), 96: ("Pending", None)}


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
    assert phases(out)[32] == ("Evaluating", None)
    assert out.status["sizes"][0]["evalJobset"] == "quickstart-c32-eval"
    assert ("SizeEvaluating", "size c32: Queued -> Evaluating") in events(out)
    assert out.status["message"] == "0/3 sizes done; evaluating c32"


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
    assert phases(out)[32] == ("Succeeded", None)
    assert "quickstart-c32" not in creates(out) and "quickstart-c32-eval" not in creates(out)
    # Even with the status gone too, the record says c32 is done.
    exp["status"] = {}
    obs.jobsets["quickstart-c96"] = jobset("quickstart-c96")  # started when c32 finished training
    out = run_once(exp, obs)
    assert phases(out)[32] == ("Succeeded", None) and creates(out) == []


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
    assert phases(out)[32] == ("Evaluating", "evaluation grid changed; re-evaluating")


def test_failure_reports_reason_and_restarts():
    exp = after(experiment(scheduling__maxConcurrent=1), run_once(experiment(scheduling__maxConcurrent=1)))
    obs = Observed(jobsets={"quickstart-c32": jobset("quickstart-c32", "failed", restarts=3)}, workloads={})
    out = run_once(exp, obs)
    size = out.status["sizes"][0]
    assert (size["phase"], size["restarts"]) == ("Failed", 3)
    assert size["message"] == "FailedJobs: boom (restarts: 3)"
    assert creates(out) == ["quickstart-c64"], "the slot is freed"
    degraded = next(c for c in out.status["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "SizeFailed")
    assert degraded["message"] == "c32: FailedJobs: boom (restarts: 3)"
    assert ("SizeFailed", "size c32: Queued -> Failed (FailedJobs: boom (restarts: 3))") in events(out)


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
    included; the upgraded operator compares only the recipe fields. (A recipe field added since
    keeps its legacy value in such an experiment unless the spec sets it: see the test below.)"""
    exp, obs = _started_with_slots(experiment(training__initialization="lecun-normal",
                                              training__ema__warmup=False))
    state = json.loads(exp["metadata"]["annotations"][STATE_ANNOTATION])
    old_style = {"ladder": {"contextDim": 32, "contextTokens": 4, "channelMult": [1, 2], "numResBlocks": 1,
                            "attentionLevels": [1], "numHeads": 4, "transformerDepth": 1, "normGroups": 8,
                            "latentChannels": 1, "latentSize": 8}}
    flat = state["recipe"]
    old_style["data"] = {}
    old_style["training"] = {"sharding": {"data": -1, "fsdp": 1}, "logEverySteps": 50}
    for key, value in flat.items():
        if key in LEGACY:  # added after those operators: they never recorded it
            continue
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
    assert phases(out)[32] == ("Suspended", "spec.suspend is true")
    assert conditions(out)["Suspended"] == ("True", "SuspendedBySpec")
    assert out.status["message"] == "spec.suspend is true: JobSets are suspended"
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
    assert conditions(out) == {"Ready": ("False", "InvalidSpec"), "Progressing": ("False", "InvalidSpec"),
                               "Degraded": ("True", "InvalidSpec"), "Suspended": ("False", "NotSuspended")}
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
    uris = tuple(f"gs://ladder-test/runs/quickstart/c{w}/checkpoints" for w in (32, 64, 96))
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
    """Validated as the API server would (unknown fields rejected): a field outside the CRD's
    status schema would be pruned silently by a real API server."""
    import jsonschema

    from tests.local.test_status_build import crd_status_schema

    schema = crd_status_schema()
    exp = after(experiment(), run_once(experiment()))
    obs = Observed(
        jobsets={
            "quickstart-c32": jobset("quickstart-c32", "completed"),
            "quickstart-c64": jobset("quickstart-c64", "failed", restarts=2),
        },
        workloads={},
    )
    running = run_once(exp, obs)
    invalid = copy.deepcopy(after(exp, running))
    invalid["spec"]["training"]["learningRate"] = -1
    suspended = after(exp, running)
    suspended["spec"]["suspend"] = True
    refused = after(exp, running)
    refused["spec"]["training"]["steps"] = 700
    outcomes = [running, run_once(invalid, obs), run_once(suspended, obs), run_once(refused, obs),
                run_once(experiment(training__learningRate=-1))]
    assert [o.phase for o in outcomes] == ["Running", "Invalid", "Suspended", "Running", "Invalid"]
    for out in outcomes:
        jsonschema.validate(out.status, schema)
    assert phases(outcomes[1]) == phases(running), "Invalid keeps the sizes"


def test_retry_annotation_restarts_failed_sizes_within_max_concurrent():
    exp = after(experiment(scheduling__maxConcurrent=1), run_once(experiment(scheduling__maxConcurrent=1)))
    obs = Observed(jobsets={"quickstart-c32": jobset("quickstart-c32", "failed", restarts=3)}, workloads={})
    exp = after(exp, run_once(exp, obs))  # c32 Failed, c64 started
    obs.jobsets["quickstart-c64"] = jobset("quickstart-c64")
    exp["metadata"]["annotations"][RETRY_ANNOTATION] = "1"
    out = run_once(exp, obs)
    assert Delete("jobset.x-k8s.io/v1alpha2", "jobsets", "quickstart-c32") in out.actions
    assert RemoveAnnotation(RETRY_ANNOTATION) in out.actions
    assert phases(out)[32] == ("Pending", None), "queued behind the running c64"
    assert ("SizeRetried", "size c32: retrying after a failure") in events(out)
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
    assert exp["status"]["sizes"][0]["message"] == "evaluation failed: FailedJobs: boom"
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


def test_a_size_started_before_the_versioned_defaults_is_not_refused_without_a_recorded_recipe():
    """An experiment an operator started before training.initialization and training.ema.warmup
    existed (its JobSets' recipe hashes are of the legacy math), whose state annotation holds no
    recipe (that operator predates it, or it was lost): the JobSets' hashes tell which defaults it
    started with, so nothing is refused and the next size trains the same math as the first."""
    legacy = experiment(scheduling__maxConcurrent=1,
                        training__initialization=LEGACY["training.initialization"])
    legacy["spec"]["training"]["ema"]["warmup"] = LEGACY["training.ema.warmup"]
    js = next(a.obj for a in run_once(legacy).actions if isinstance(a, Create))
    exp = experiment(scheduling__maxConcurrent=1)  # the fields unset: the new defaults would differ
    obs = Observed(jobsets={"quickstart-c32": js}, workloads={})
    out = run_once(exp, obs)
    assert conditions(out).get("Degraded", ("False", ""))[0] == "False", out.status["conditions"]
    done = copy.deepcopy(js) | {"status": jobset("quickstart-c32", "completed")["status"]}
    out = run_once(after(exp, out), Observed(jobsets={"quickstart-c32": done}, workloads={}))
    (c64,) = [a.obj for a in out.actions
              if isinstance(a, Create) and a.obj["metadata"]["name"] == "quickstart-c64"]
    assert c64["metadata"]["annotations"][RECIPE_HASH] == _legacy_hash(legacy, 64)  # what the old one made
    assert _legacy_hash(legacy, 64) != _legacy_hash(exp, 64)  # so the check above can fail
    # an edit that changes the math is still refused
    exp["spec"]["training"]["steps"] = 700
    refused = run_once(exp, Observed(jobsets={"quickstart-c32": js}, workloads={}))
    assert conditions(refused)["Degraded"] == ("True", "SpecChangeRefused")


def _legacy_hash(doc: dict, width: int) -> str:
    from ladder_api.plan import expand
    from ladder_api.spec import ScalingExperiment

    return expand(ScalingExperiment.model_validate(doc)).run(width).recipe_hash


def _c32_done_c64_training(max_concurrent: int = 2):
    """c32 trained and evaluated, its JobSets expired; c64 training; c96 not started."""
    exp = experiment(scheduling__maxConcurrent=max_concurrent, ladder__widths=[32, 64, 96])
    exp = after(exp, run_once(exp))
    obs = Observed(jobsets={"quickstart-c32": jobset("quickstart-c32", "completed"),
                            "quickstart-c64": jobset("quickstart-c64")}, workloads=None)
    out = run_once(exp, obs)
    exp = after(exp, out)
    ev = next(a.obj for a in out.actions if isinstance(a, Create) and a.obj["kind"] == "JobSet"
              and a.obj["metadata"]["name"].endswith("eval"))
    annotations = ev["metadata"]["annotations"]
    obs.jobsets["quickstart-c32-eval"] = jobset("quickstart-c32-eval", "completed", **annotations)
    obs.jobsets["quickstart-c96"] = jobset("quickstart-c96")
    exp = after(exp, run_once(exp, obs))
    del obs.jobsets["quickstart-c32"], obs.jobsets["quickstart-c32-eval"]  # ttlSecondsAfterFinished
    return exp, obs


def test_a_short_lived_invalid_edit_erases_nothing_and_retrains_nothing():
    """Issue 13: widths [32, 64, 50] (the CRD schema accepts it) for one reconcile, then reverted."""
    exp, obs = _c32_done_c64_training()
    assert phases(run_once(exp, obs))[32] == ("Succeeded", None)
    exp["spec"]["ladder"]["widths"] = [32, 64, 50]
    invalid = run_once(exp, obs)
    assert invalid.phase == "Invalid" and "spec.ladder.widths" in invalid.status["message"]
    assert phases(invalid) == {32: ("Succeeded", None), 64: ("Training", None), 96: ("Training", None)}
    assert invalid.status["summary"]["progress"] == "1/3"
    exp = after(exp, invalid)  # applied as server-side apply does
    exp["spec"]["ladder"]["widths"] = [32, 64, 96]
    out = run_once(exp, obs)
    assert creates(out) == [], "c32 is not trained again; c64 and c96 hold both slots"
    assert phases(out) == {32: ("Succeeded", None), 64: ("Training", None), 96: ("Training", None)}
    # Had the status lost its sizes anyway (an older operator, a person), the record still says so.
    exp["status"] = {}
    assert creates(run_once(exp, obs)) == []


def test_max_concurrent_holds_for_starts_owed_by_the_record():
    """Both sizes recorded as started but neither created (a crash); maxConcurrent lowered to 1."""
    exp = after(experiment(), run_once(experiment()))
    exp["spec"]["scheduling"] = {"maxConcurrent": 1}
    assert creates(run_once(exp)) == ["quickstart-c32"]


def _deactivated_by_kueue(name: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"active": False}, "status": {"conditions": [
        {"type": "Evicted", "status": "True", "reason": "DeactivatedDueToRequeuingLimitExceeded",
         "message": "The workload is deactivated due to exceeding the maximum number of re-queuing retries"},
    ]}}


def test_a_workload_kueue_deactivated_stays_deactivated_until_the_user_retries():
    """Issue 13: the operator used to set spec.active back to true within seconds, forever."""
    exp = after(experiment(), run_once(experiment()))
    wl = _deactivated_by_kueue("jobset-quickstart-c32")
    admitted = {"metadata": {"name": "jobset-quickstart-c64"}, "spec": {"active": True},
                "status": {"admission": {"clusterQueue": "tpu"}}}
    obs = Observed(jobsets={"quickstart-c32": jobset("quickstart-c32", suspend=True),
                            "quickstart-c64": jobset("quickstart-c64")},
                   workloads={"quickstart-c32": wl, "quickstart-c64": admitted})
    out = run_once(exp, obs)
    assert not any(isinstance(a, SetSuspend) for a in out.actions), "Kueue's decision stands"
    assert creates(out) == [], "c32 keeps its slot: maxConcurrent 2 holds"
    phase, message = phases(out)[32]
    assert phase == "Suspended" and message.startswith(
        "Kueue deactivated its Workload jobset-quickstart-c32 (DeactivatedDueToRequeuingLimitExceeded: "
        "The workload is deactivated due to exceeding the maximum number of re-queuing retries)")
    assert message.endswith("annotate the experiment with ladder.dev/retry-failed=1 to re-activate it")
    assert (out.phase, conditions(out)["Degraded"]) == ("Running", ("True", "SizeSuspended"))
    exp = after(exp, out)
    assert run_once(exp, obs).actions == [], "and stays so, with nothing to post again"
    exp["metadata"]["annotations"][RETRY_ANNOTATION] = "1"
    out = run_once(exp, obs)
    assert SetSuspend("workload", "jobset-quickstart-c32", False) in out.actions
    assert RemoveAnnotation(RETRY_ANNOTATION) in out.actions
    assert ("SizeRetried", "size c32: re-activating its Kueue Workload") in events(out)
    assert phases(out)[32] == ("Queued", "waiting for Kueue to admit it in queue 'ladder'")
    assert conditions(out)["Degraded"] == ("False", "AsExpected")


def test_an_object_the_api_server_refused_stops_creation_and_degrades_once():
    """Issue 13: the controller retried a 422 forever. Told what was refused, reconcile creates
    nothing more (no storm), says Degraded/ObjectRejected with the server's words and posts one
    Warning; the running sizes keep being watched."""
    why = 'the API server refused JobSet quickstart-c64: JobSet.jobset.x-k8s.io "quickstart-c64" is invalid'
    exp = after(experiment(), run_once(experiment()))
    observed = Observed(jobsets={"quickstart-c32": jobset("quickstart-c32")}, workloads={}, rejected=why)
    out = run_once(exp, observed)
    assert not [a for a in out.actions if isinstance(a, (Create, ApplyShared, Delete))]
    assert conditions(out)["Degraded"] == ("True", "ObjectRejected")
    degraded = next(c for c in out.status["conditions"] if c["type"] == "Degraded")
    assert degraded["message"] == why
    assert ("ObjectRejected", why) in events(out)
    assert phases(out)[32][0] == "Queued", "what runs is still reported"
    again = run_once(after(exp, out), observed)
    assert not [e for e in events(again) if e[0] == "ObjectRejected"], "once"
    assert again.status == out.status


PREPARE = {"webdataset": ["gs://raw/shards/{00000..00003}.tar"], "workers": 2}


def test_prepare_runs_first_and_training_starts_once_it_succeeded():
    exp = experiment(data__prepare=PREPARE, data__trainUri="gs://d/latents/")
    out = run_once(exp)
    assert creates(out) == ["quickstart-prepare"]
    kinds = [type(a) for a in out.actions]
    assert kinds.index(ApplyShared) < kinds.index(Create)  # its pods mount the run ConfigMap
    said = "preparing data: JobSet quickstart-prepare, 2 workers"
    assert (out.phase, out.status["message"]) == ("Preparing", said)
    assert conditions(out)["Progressing"] == ("True", "PreparingData")
    assert {w: p for w, (p, _) in phases(out).items()} == {32: "Pending", 64: "Pending", 96: "Pending"}
    assert ("ExperimentPreparing", f"New -> Preparing: {said}") in events(out)
    exp = after(exp, out)
    running = Observed(jobsets={"quickstart-prepare": jobset("quickstart-prepare")}, workloads={})
    again = run_once(exp, running)
    assert creates(again) == [] and again.phase == "Preparing"
    done = Observed(jobsets={"quickstart-prepare": jobset("quickstart-prepare", "completed")}, workloads={})
    out = run_once(exp, done)
    assert creates(out) == ["quickstart-c32", "quickstart-c64"]
    state = next(a.state for a in out.actions if isinstance(a, RecordState))
    assert state["prepare"] == "completed"
    # the JobSet expired: the record holds, nothing is prepared again
    out = run_once(after(exp, out), Observed(workloads={}, data_prepared=False))
    assert "quickstart-prepare" not in creates(out)


def test_a_prepared_manifest_skips_the_jobset():
    exp = experiment(data__prepare=PREPARE)
    out = run_once(exp, Observed(workloads={}, data_prepared=True))
    assert creates(out) == ["quickstart-c32", "quickstart-c64"] and out.phase == "Pending"


def test_a_failed_prepare_fails_the_experiment_with_its_reason_until_retried():
    exp = after(experiment(data__prepare=PREPARE), run_once(experiment(data__prepare=PREPARE)))
    failed = Observed(jobsets={"quickstart-prepare": jobset("quickstart-prepare", "failed")}, workloads={})
    out = run_once(exp, failed)
    assert creates(out) == [] and out.phase == "Failed"
    assert out.status["message"] == "data preparation failed: FailedJobs: boom (JobSet quickstart-prepare)"
    assert conditions(out)["Degraded"] == ("True", "PrepareFailed")
    exp = after(exp, out)
    exp["metadata"]["annotations"][RETRY_ANNOTATION] = "1"
    out = run_once(exp, failed)
    assert Delete("jobset.x-k8s.io/v1alpha2", "jobsets", "quickstart-prepare") in out.actions
    assert RemoveAnnotation(RETRY_ANNOTATION) in out.actions and out.phase == "Preparing"
    exp = after(exp, out)
    del exp["metadata"]["annotations"][RETRY_ANNOTATION]
    assert creates(run_once(exp)) == ["quickstart-prepare"]


def test_without_the_section_the_state_annotation_is_unchanged():
    out = run_once(experiment())
    state = next(a.state for a in out.actions if isinstance(a, RecordState))
    assert "prepare" not in state


def test_an_experiment_started_before_the_protocol_defaults_keeps_them_after_an_upgrade():
    """Its recorded recipe lacks `training.initialization` / `training.ema.warmup` and its spec
    leaves them unset: the upgraded operator plans it with their legacy values (its original math,
    not refused), while a new experiment gets the paper's defaults. `ladder run` applies the same
    rule (tests/local/test_runner.py)."""
    exp, obs = _started_with_slots(experiment())
    assert run_once(experiment()).runs[0].training.initialization == "compvis"
    state = json.loads(exp["metadata"]["annotations"][STATE_ANNOTATION])
    state["recipe"] = {k: v for k, v in state["recipe"].items() if k not in LEGACY}
    exp["metadata"]["annotations"][STATE_ANNOTATION] = json.dumps(state)
    out = run_once(exp, obs)
    assert not _refused(out)
    training = out.runs[0].training
    assert (training.initialization, training.ema.warmup) == ("lecun-normal", False)
    exp["spec"]["training"]["initialization"] = "compvis"  # set explicitly: a named recipe change
    degraded = next(c for c in run_once(exp, obs).status["conditions"] if c["type"] == "Degraded")
    assert 'spec.training.initialization: "lecun-normal" -> "compvis"' in degraded["message"]
