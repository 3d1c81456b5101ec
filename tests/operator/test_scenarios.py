"""The operator process against the local API server: the life of an experiment, end to end.

The test plays the JobSet controller (JobSet status) and Kueue (Workloads, admission) by writing
what they would; the pods' status writes are server-side applies with their own field managers.
"""

from __future__ import annotations

import threading
import urllib.request

from ladder_api import storage
from ladder_api.spec import ScalingExperiment
from tests.conftest import validate_manifest
from tests.operator.harness import SX, load_example, results_for, tiny, wait_for, with_changes


def _started(cluster, exp):
    return {n for n, j in cluster.jobsets(exp).items() if not n.endswith("-eval")}


def test_quickstart_runs_to_the_frontier(operator_process, cluster):
    exp = load_example("quickstart.yaml", cluster.ns)
    name = exp["metadata"]["name"]
    w = ScalingExperiment.model_validate(exp).spec.ordered_widths()  # the start order
    assert len(w) == 3, "this scenario walks three sizes"
    n = (exp["spec"].get("scheduling") or {}).get("maxConcurrent", 2)
    assert n == 2, "this scenario expects two sizes at once"
    js = {x: f"{name}-c{x}" for x in w}
    cluster.create(exp)
    # maxConcurrent training JobSets, in the spec's start order, owned by the experiment.
    wait_for("two training JobSets", lambda: _started(cluster, name) == {js[w[0]], js[w[1]]})
    owner_uid = cluster.experiment(name)["metadata"]["uid"]
    for obj in cluster.jobsets(name).values():
        assert obj["metadata"]["ownerReferences"][0]["uid"] == owner_uid
    assert {o["metadata"]["name"] for o in cluster.objects("/api/v1/namespaces/{ns}/configmaps")} == {
        f"{name}-runs"
    }
    # Kueue: Workloads pending -> sizes Queued.
    cluster.kueue_admit(admit=set())
    wait_for(
        "sizes queued", lambda: cluster.phases(name) == {w[0]: "Queued", w[1]: "Queued", w[2]: "Pending"}
    )
    # Admit the first only: it trains, the second stays queued; the trainer reports progress.
    cluster.kueue_admit(admit={js[w[0]]})
    wait_for("first training", lambda: cluster.phases(name)[w[0]] == "Training")
    assert cluster.phases(name)[w[1]] == "Queued"
    cluster.trainer_reports(name, w[0], 200, 600)
    wait_for("progress kept", lambda: cluster.sizes(name)[w[0]].get("step") == 200)
    # Training completes: evaluation starts, the third size starts (a slot freed).
    cluster.set_jobset(js[w[0]], "completed")
    wait_for("first evaluating", lambda: cluster.phases(name)[w[0]] == "Evaluating")
    wait_for("eval JobSet", lambda: f"{js[w[0]]}-eval" in cluster.jobsets(name))
    wait_for("third started", lambda: js[w[2]] in cluster.jobsets(name))
    assert cluster.sizes(name)[w[0]]["step"] == 200, "the trainer's fields survive the operator's writes"
    # Results from many writers at once (two evaluation workers per size), all kept in storage;
    # the status holds only their progress reports and the operator's digest.
    threads = []
    for width in w:
        for worker, sampler in enumerate(("ddim", "dpmpp_2m")):
            rs = results_for(width, 300, 100.0 * 64 / width, samplers=(sampler,))  # the final step
            threads.append(threading.Thread(target=cluster.evaluator_writes, args=(name, width, rs, worker)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cluster.recorded(name)) == 3 * 2 * 2 * 2
    wait_for("the digest counts them", lambda: [
        (s.get("measurements") or {}).get("recorded") for s in cluster.status(name)["sizes"]] == [8, 8, 8])
    for width in w[1:]:
        cluster.kueue_admit(admit={js[width]})
        cluster.set_jobset(js[width], "completed")
    wait_for("all eval JobSets", lambda: len([x for x in cluster.jobsets(name) if x.endswith("-eval")]) == 3)
    for width in w:
        cluster.kueue_admit(admit={f"{js[width]}-eval"})
        cluster.set_jobset(f"{js[width]}-eval", "completed")
    wait_for("Succeeded", lambda: cluster.status(name).get("phase") == "Succeeded")
    status = cluster.status(name)
    assert "results" not in status
    summary = status["summary"]
    assert summary["progress"] == "3/3" and summary["frontier"] and summary["bestWidth"] == max(w)
    assert {k: v for k, v in summary.items() if k != "measured"} == cluster.summary_of_record(name)
    per_size = status["sizes"][0]["measurements"]["expected"]
    assert summary["measured"] == f"24/{3 * per_size}"
    assert cluster.condition(name, "Ready")["status"] == "True"
    assert cluster.condition(name, "Progressing")["status"] == "False"
    assert cluster.events("ExperimentSucceeded")
    assert len(cluster.jobsets(name)) == 6, "never a duplicate"
    metrics = scrape(operator_process)
    assert metrics['ladder_experiments{phase="Succeeded"}'] >= 1
    assert metrics["ladder_reconcile_duration_seconds_count"] > 0


def test_the_operator_process_answers_its_probes(operator_process):
    port = operator_process.extra[operator_process.extra.index("--metrics-port") + 1]

    def answer(path: str) -> int:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).status
        except OSError:
            return 0

    wait_for("/readyz", lambda: answer("/readyz") == 200)
    assert answer("/healthz") == 200


def scrape(proc) -> dict[str, float]:
    port = proc.extra[proc.extra.index("--metrics-port") + 1]
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _scraped(proc) -> dict[str, float] | None:
    try:
        return scrape(proc)
    except OSError:
        return None


def test_paper_example_starts_max_concurrent_sizes(operator_process, cluster):
    exp = load_example("paper-v5e.yaml", cluster.ns)
    name = exp["metadata"]["name"]
    n = exp["spec"]["scheduling"]["maxConcurrent"]
    widths = sorted(exp["spec"]["ladder"]["widths"])
    cluster.create(exp)
    expected = {f"{name}-c{w}" for w in widths[:n]}
    wait_for(f"{n} JobSets", lambda: _started(cluster, name) == expected)
    for obj in cluster.jobsets(name).values():  # as created, minus what the server adds
        obj = {k: v for k, v in obj.items() if k != "status"}
        obj["metadata"] = {
            k: v
            for k, v in obj["metadata"].items()
            if k in ("name", "namespace", "labels", "annotations", "ownerReferences")
        }
        validate_manifest(obj)
    js = cluster.jobsets(name)[f"{name}-c{widths[0]}"]
    assert js["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == exp["spec"]["scheduling"]["queue"]
    assert js["metadata"]["annotations"]["ladder.dev/recipe-hash"]
    # One finishes: exactly one more starts.
    cluster.set_jobset(f"{name}-c{widths[0]}", "completed")
    wait_for("next size", lambda: _started(cluster, name) == expected | {f"{name}-c{widths[n]}"})
    wait_for("sizes in status", lambda: len(cluster.sizes(name)) == len(widths))


def test_failure_names_reason_and_restarts_and_frees_the_slot(operator_process, cluster):
    exp = with_changes(tiny(cluster.ns), **{"scheduling.maxConcurrent": 1})
    name = exp["metadata"]["name"]
    cluster.create(exp)
    wait_for("c32", lambda: _started(cluster, name) == {f"{name}-c32"})
    cluster.set_jobset(
        f"{name}-c32",
        "failed",
        restarts=10,
        reason="FailedJobs",
        message="jobset failed: max restarts reached",
    )
    wait_for("c32 failed", lambda: cluster.phases(name).get(32) == "Failed")
    size = cluster.sizes(name)[32]
    assert size["restarts"] == 10 and "FailedJobs" in size["message"] and "restarts: 10" in size["message"]
    degraded = cluster.condition(name, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "SizeFailed"
    wait_for("c64 starts", lambda: f"{name}-c64" in cluster.jobsets(name))
    assert any(e["type"] == "Warning" for e in cluster.events("SizeFailed"))
    # Retry on request: the failed size queues again behind the running one, then trains anew.
    failed_uid = cluster.jobsets(name).get(f"{name}-c32", {}).get("metadata", {}).get("uid")
    cluster.http.merge(
        f"{SX}/namespaces/{cluster.ns}/scalingexperiments/{name}",
        {"metadata": {"annotations": {"ladder.dev/retry-failed": "1"}}},
    )
    wait_for("c32 pending again", lambda: cluster.phases(name).get(32) == "Pending")
    assert "ladder.dev/retry-failed" not in cluster.experiment(name)["metadata"].get("annotations", {})
    cluster.set_jobset(f"{name}-c64", "completed")
    wait_for(
        "c32 re-created",
        lambda: (
            cluster.jobsets(name).get(f"{name}-c32", {}).get("metadata", {}).get("uid")
            not in (None, failed_uid)
        ),
    )
    wait_for("c32 queued", lambda: cluster.phases(name).get(32) == "Queued")
    assert cluster.sizes(name)[32]["restarts"] == 0


def test_suspend_and_resume(operator_process, cluster):
    exp = tiny(cluster.ns)
    name = exp["metadata"]["name"]
    cluster.create(exp)
    wait_for("2 JobSets", lambda: len(_started(cluster, name)) == 2)
    cluster.kueue_admit(admit={f"{name}-c32", f"{name}-c64"})
    wait_for("training", lambda: set(cluster.phases(name).values()) == {"Training", "Pending"})
    cluster.http.merge(f"{SX}/namespaces/{cluster.ns}/scalingexperiments/{name}", {"spec": {"suspend": True}})
    wait_for(
        "JobSets suspended", lambda: all(j["spec"].get("suspend") for j in cluster.jobsets(name).values())
    )
    wait_for(
        "workloads deactivated",
        lambda: all(
            w["spec"].get("active") is False
            for w in cluster.objects("/apis/kueue.x-k8s.io/v1beta1/namespaces/{ns}/workloads")
        ),
    )
    cluster.kueue_admit(admit=set())  # Kueue evicts the deactivated Workloads (quota given back)
    wait_for("Suspended", lambda: cluster.status(name).get("phase") == "Suspended")
    assert cluster.condition(name, "Suspended")["status"] == "True"
    assert cluster.phases(name)[32] == "Suspended"
    assert len(_started(cluster, name)) == 2, "nothing new starts while suspended"
    cluster.http.merge(
        f"{SX}/namespaces/{cluster.ns}/scalingexperiments/{name}", {"spec": {"suspend": False}}
    )
    wait_for(
        "workloads active",
        lambda: all(
            w["spec"].get("active") is True
            for w in cluster.objects("/apis/kueue.x-k8s.io/v1beta1/namespaces/{ns}/workloads")
        ),
    )
    cluster.kueue_admit(admit={f"{name}-c32", f"{name}-c64"})
    wait_for("training again", lambda: cluster.phases(name)[32] == "Training")
    assert cluster.condition(name, "Suspended")["status"] == "False"


def test_recipe_edit_is_refused_and_new_sizes_extend(operator_process, cluster):
    exp = with_changes(tiny(cluster.ns), **{"scheduling.maxConcurrent": 1})
    name = exp["metadata"]["name"]
    cluster.create(exp)
    wait_for("c32", lambda: _started(cluster, name) == {f"{name}-c32"})
    before = cluster.jobsets(name)[f"{name}-c32"]
    cluster.edit(name, **{"training.learningRate": 0.004})
    wait_for("refusal", lambda: cluster.condition(name, "Degraded").get("reason") == "SpecChangeRefused")
    message = cluster.condition(name, "Degraded")["message"]
    assert "spec.training.learningRate" in message and "0.002" in message and "0.004" in message
    assert (
        cluster.jobsets(name)[f"{name}-c32"]["metadata"]["resourceVersion"]
        == before["metadata"]["resourceVersion"]
    ), "old runs untouched"
    cluster.set_jobset(f"{name}-c32", "completed")
    wait_for("observed", lambda: cluster.phases(name).get(32) == "Evaluating")
    assert f"{name}-c64" not in cluster.jobsets(name), "nothing starts on a refused spec"
    assert cluster.events("SpecChangeRefused")
    # Revert, and extend: a new width and a new sampling step count.
    cluster.edit(
        name,
        **{
            "training.learningRate": 0.002,
            "ladder.widths": [32, 64, 96, 128],
            "evaluation.steps": [4, 8, 16, 32],
        },
    )
    wait_for("refusal cleared", lambda: cluster.condition(name, "Degraded").get("status") == "False")
    wait_for("c64 starts", lambda: f"{name}-c64" in cluster.jobsets(name))
    wait_for("4 sizes", lambda: sorted(cluster.sizes(name)) == [32, 64, 96, 128])
    wait_for(
        "eval grid updated",
        lambda: (
            cluster.jobsets(name)
            .get(f"{name}-c32-eval", {})
            .get("metadata", {})
            .get("annotations", {})
            .get("ladder.dev/evaluation-hash")
        ),
    )
    cm = cluster.objects("/api/v1/namespaces/{ns}/configmaps")[0]
    assert f"{name}-c128.json" in cm["data"], "the run ConfigMap covers the new size"


def test_delete_cascades_and_cleans_checkpoints_when_asked(operator_process, cluster, gcs):
    out = gcs.bucket(f"out-{cluster.ns}")
    storage.write_bytes(f"{out}/quickstart/c32/checkpoints/200/params", b"x")
    storage.write_text(f"{out}/quickstart/c32/results.json", "[]")
    exp = with_changes(
        tiny(cluster.ns),
        **{"training.checkpoint.retention": "delete", "storage.outputUri": f"{out}/"},
    )
    name = exp["metadata"]["name"]
    cluster.create(exp)
    wait_for(
        "finalizer",
        lambda: (
            "ladder.dev/checkpoint-cleanup" in (cluster.experiment(name)["metadata"].get("finalizers") or [])
        ),
    )
    wait_for("JobSets", lambda: len(cluster.jobsets(name)) == 2)
    code, _ = cluster.http.delete(f"{SX}/namespaces/{cluster.ns}/scalingexperiments/{name}")
    assert code == 200
    wait_for(
        "gone", lambda: cluster.http.get(f"{SX}/namespaces/{cluster.ns}/scalingexperiments/{name}")[0] == 404
    )
    assert storage.list_files(f"{out}/quickstart/c32/checkpoints") == [], "checkpoints deleted"
    assert storage.exists(f"{out}/quickstart/c32/results.json"), "results kept"
    assert cluster.jobsets(name) == {}
    assert cluster.objects("/api/v1/namespaces/{ns}/configmaps") == []
    assert cluster.events("CheckpointsDeleted")


def test_missing_bucket_does_not_block_deletion(operator_process, cluster):
    exp = with_changes(
        tiny(cluster.ns),
        **{"training.checkpoint.retention": "delete", "storage.outputUri": f"gs://gone-{cluster.ns}/"},
    )
    name = exp["metadata"]["name"]
    cluster.create(exp)
    wait_for("finalizer", lambda: cluster.experiment(name)["metadata"].get("finalizers"))
    cluster.http.delete(f"{SX}/namespaces/{cluster.ns}/scalingexperiments/{name}")
    wait_for(
        "gone", lambda: cluster.http.get(f"{SX}/namespaces/{cluster.ns}/scalingexperiments/{name}")[0] == 404
    )
    assert cluster.events("CheckpointsMissing")


def test_invalid_experiment_is_reported_once(operator_process, cluster):
    bad = tiny(cluster.ns, "broken")
    # The CRD schema accepts it (a real API server refuses learningRate -1 itself); only the
    # operator's validation knows that 30 channels cannot be split into 8 norm groups.
    bad["spec"]["ladder"]["widths"] = [30]
    cluster.create(bad)
    wait_for("Invalid", lambda: cluster.status("broken").get("phase") == "Invalid")
    message = cluster.status("broken")["message"]
    assert "spec.ladder.widths" in message
    assert cluster.events("InvalidSpec")
    rv = cluster.experiment("broken")["metadata"]["resourceVersion"]
    # The operator keeps serving others; the invalid one sees no further writes (no retry storm).
    good = tiny(cluster.ns, "good")
    cluster.create(good)
    wait_for("good runs", lambda: len(_started(cluster, "good")) == 2)
    wait_for("good status", lambda: cluster.status("good").get("phase") == "Pending")
    assert cluster.experiment("broken")["metadata"]["resourceVersion"] == rv
    assert len(cluster.events("InvalidSpec")) == 1
    assert cluster.jobsets("broken") == {}


def _generation_observed(cluster, name) -> bool:
    exp = cluster.experiment(name)
    return (exp.get("status") or {}).get("observedGeneration") == exp["metadata"]["generation"]


def test_a_short_lived_invalid_edit_retrains_nothing(operator_process, cluster):
    """Issue 13: an Invalid status applied without sizes deleted them; the finished size was then
    trained again, beside two others (maxConcurrent 2)."""
    exp = tiny(cluster.ns)
    name = exp["metadata"]["name"]
    cluster.create(exp)
    wait_for("2 JobSets", lambda: _started(cluster, name) == {f"{name}-c32", f"{name}-c64"})
    cluster.set_jobset(f"{name}-c32", "completed")
    wait_for("c32 eval JobSet", lambda: f"{name}-c32-eval" in cluster.jobsets(name))
    cluster.set_jobset(f"{name}-c32-eval", "completed")
    wait_for("c32 Succeeded", lambda: cluster.phases(name).get(32) == "Succeeded")
    for js in (f"{name}-c32", f"{name}-c32-eval"):  # what ttlSecondsAfterFinished does
        cluster.http.delete(f"/apis/jobset.x-k8s.io/v1alpha2/namespaces/{cluster.ns}/jobsets/{js}")
    cluster.edit(name, **{"ladder.widths": [32, 64, 50]})
    wait_for("Invalid", lambda: cluster.status(name).get("phase") == "Invalid")
    assert cluster.phases(name) == {32: "Succeeded", 64: "Queued", 96: "Queued"}, "sizes kept"
    cluster.edit(name, **{"ladder.widths": [32, 64, 96]})
    wait_for("valid again", lambda: _generation_observed(cluster, name)
             and cluster.status(name).get("phase") != "Invalid")
    assert _started(cluster, name) == {f"{name}-c64", f"{name}-c96"}, "c32 is not trained again"
    assert cluster.phases(name)[32] == "Succeeded"


def test_kueue_deactivation_stands_until_the_user_retries(operator_process, cluster):
    """Issue 13: a Workload Kueue deactivated (requeuing limit) was re-activated within seconds."""
    exp = tiny(cluster.ns)
    name = exp["metadata"]["name"]
    cluster.create(exp)
    wait_for("2 JobSets", lambda: len(_started(cluster, name)) == 2)
    cluster.kueue_admit(admit=set())
    wl_path = f"/apis/kueue.x-k8s.io/v1beta1/namespaces/{cluster.ns}/workloads/jobset-{name}-c32"
    # Kueue's order: the DeactivationTarget condition, then spec.active false, then the eviction.
    target = {"type": "DeactivationTarget", "status": "True", "reason": "RequeuingLimitExceeded",
              "message": "exceeding the maximum number of re-queuing retries",
              "lastTransitionTime": "2026-01-01T00:00:00Z"}
    assert cluster.http.merge(wl_path + "/status", {"status": {"conditions": [target]}})[0] == 200
    assert cluster.http.merge(wl_path, {"spec": {"active": False}})[0] == 200
    wait_for("c32 shows why", lambda: "Kueue deactivated" in (cluster.sizes(name)[32].get("message") or ""))
    assert cluster.http.get(wl_path)[1]["spec"]["active"] is False, "the operator left it deactivated"
    assert cluster.phases(name)[32] == "Suspended"
    assert cluster.condition(name, "Degraded")["reason"] == "SizeSuspended"
    assert f"{name}-c96" not in cluster.jobsets(name), "c32 keeps its slot"
    cluster.http.merge(f"{SX}/namespaces/{cluster.ns}/scalingexperiments/{name}",
                       {"metadata": {"annotations": {"ladder.dev/retry-failed": "1"}}})
    wait_for("re-activated", lambda: cluster.http.get(wl_path)[1]["spec"]["active"] is True)
    wait_for("c32 queued", lambda: cluster.phases(name)[32] == "Queued")


def test_an_object_the_api_server_refuses_degrades_the_experiment_once_without_retries(
    operator_process, cluster
):
    """Issue 13: a 422 on a child object was retried forever (a retry storm on a bad name). The
    experiment now says Degraded with the server's message, once; a spec edit tries again."""
    exp = tiny(cluster.ns, "refused")
    before = wait_for("the operator's metrics", lambda: _scraped(operator_process))
    message = 'metadata.labels: Invalid value: "bad queue/../": a valid label must be ...'
    code, _ = cluster.http.request("POST", "/debug/reject",
                                   {"resource": "jobsets", "name": "refused-c32", "message": message})
    assert code == 200
    try:
        cluster.create(exp)
        wait_for("Degraded",
                 lambda: cluster.condition("refused", "Degraded").get("reason") == "ObjectRejected")
        degraded = cluster.condition("refused", "Degraded")
        assert degraded["status"] == "True"
        assert degraded["message"] == ('the API server refused JobSet refused-c32: '
                                       f'JobSet.jobset.x-k8s.io "refused-c32" is invalid: {message}')
        rv = cluster.experiment("refused")["metadata"]["resourceVersion"]
        # Let the operator finish something else, then count: no retry, no second Event, no write.
        cluster.create(tiny(cluster.ns, "other"))
        wait_for("other runs", lambda: len(_started(cluster, "other")) == 2)
        wait_for("other status", lambda: cluster.status("other").get("phase") == "Pending")
        after = scrape(operator_process)
        key = 'ladder_api_errors_total{code="422",verb="create"}'
        assert after.get(key, 0) - before.get(key, 0) == 1, "the refused create was not retried"
        failed = 'ladder_reconciles_total{result="error"}'
        assert after.get(failed, 0) == before.get(failed, 0), "no reconcile failed"
        assert cluster.experiment("refused")["metadata"]["resourceVersion"] == rv
        assert [e["message"] for e in cluster.events("ObjectRejected")] == [degraded["message"]]
        assert _started(cluster, "refused") == set(), "nothing more is created"
    finally:
        cluster.http.request("DELETE", "/debug/reject")
    cluster.edit("refused", **{"training.logEverySteps": 25})  # a new generation tries again
    wait_for("created", lambda: _started(cluster, "refused") == {"refused-c32", "refused-c64"})
    wait_for("recovered", lambda: cluster.condition("refused", "Degraded").get("status") == "False")


def _delete_during_a_watch_gap(apiserver, namespace: str, jobset: str) -> None:
    """What an API server restart or a long network partition does to a watcher: its stream ends,
    an object is deleted while it is away and the history is compacted, so its reconnection is
    answered 410 Gone and it must list again. All on the server's loop, so the DELETED event
    cannot reach the old stream (it ends first)."""

    def gap():
        apiserver.server.close_watches()
        store = apiserver.store
        store.delete(store.find("jobset.x-k8s.io", "v1alpha2", "jobsets"), namespace, jobset)
        store.compact()

    apiserver.call(gap)


def test_a_jobset_deleted_while_the_watch_was_away_is_noticed_after_the_relist(
    apiserver, operator_process, cluster
):
    """Issue 13: after a 410 the watch relisted, but the cache kept what the listing lacked: a
    JobSet deleted in the gap left its size in Training forever. A size whose JobSet went away
    is owed its slot, so the operator creates it again once it notices."""
    exp = tiny(cluster.ns, "gap")
    cluster.create(exp)
    wait_for("2 JobSets", lambda: _started(cluster, "gap") == {"gap-c32", "gap-c64"})
    cluster.kueue_admit(admit={"gap-c32", "gap-c64"})
    wait_for("Training", lambda: cluster.phases("gap") == {32: "Training", 64: "Training", 96: "Pending"})
    old_uid = cluster.jobsets("gap")["gap-c64"]["metadata"]["uid"]
    def watches():
        return apiserver.request_counts().get(("watch", "jobsets"), 0)

    def c64_uid():
        return cluster.jobsets("gap").get("gap-c64", {}).get("metadata", {}).get("uid")

    before = watches()
    _delete_during_a_watch_gap(apiserver, cluster.ns, "gap-c64")
    wait_for("the watch to reconnect", lambda: watches() > before)
    wait_for("c64 created again", lambda: c64_uid() not in (None, old_uid))
    wait_for("c64 Queued", lambda: cluster.phases("gap")[64] == "Queued")
    assert _started(cluster, "gap") == {"gap-c32", "gap-c64"}, "maxConcurrent holds"
