"""The operator under abuse: SIGKILLed at random points 20 times, and 200 experiments at once."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.operator.harness import OperatorProcess, results_for, tiny, wait_for, with_changes

pytestmark = pytest.mark.slow


def _drive(cluster, names: list[str]) -> bool:
    """One step of the world around the operator: Kueue admits everything, running JobSets
    finish, trainers report, evaluators write results. Returns True when all succeeded."""
    cluster.kueue_admit(admit=set(cluster.jobsets()))
    for js_name, js in cluster.jobsets().items():
        if js.get("status", {}).get("terminalState"):
            continue
        exp = js["metadata"]["labels"]["ladder.dev/experiment"]
        width = int(js["metadata"]["labels"]["ladder.dev/width"])
        if js_name.endswith("-eval"):
            cluster.evaluator_writes(exp, width, results_for(width, 600, 6400.0 / width))
        else:
            cluster.trainer_reports(exp, width, 600, 600)
        cluster.set_jobset(js_name, "completed")
    return all(cluster.status(n).get("phase") == "Succeeded" for n in names)


def _wait_ready(apiserver, before: int) -> None:
    wait_for(
        "the operator watching", lambda: apiserver.request_counts().get(("watch", "jobsets"), 0) > before
    )


def test_sigkill_at_random_points_converges_without_duplicates(apiserver, cluster, tmp_path):
    rng = random.Random(20)
    names = []
    for i, (widths, n) in enumerate([([32, 64, 96], 1), ([32, 64], 2), ([64, 96, 128], 2)]):
        exp = with_changes(
            tiny(cluster.ns, f"kill-{i}"),
            **{"ladder.widths": widths, "scheduling.maxConcurrent": n},
        )
        cluster.create(exp)
        names.append(f"kill-{i}")
    proc = OperatorProcess(apiserver.kubeconfig, tmp_path / "operator.log")
    for _ in range(10):
        before = apiserver.request_counts().get(("watch", "jobsets"), 0)
        proc.start()
        _wait_ready(apiserver, before)
        _drive(cluster, names)
        # Kill somewhere inside the reconciles the step above caused.
        wait_for("a random point", lambda: True, interval=0)
        import time

        time.sleep(rng.uniform(0.0, 0.25))
        proc.kill()
    proc.start()
    try:
        wait_for("all Succeeded", lambda: _drive(cluster, names), timeout=60, interval=0.1)
    finally:
        proc.stop()
    total_sizes = 3 + 2 + 3
    jobsets = cluster.jobsets()
    assert len(jobsets) == 2 * total_sizes, sorted(jobsets)
    assert len(cluster.objects("/api/v1/namespaces/{ns}/configmaps")) == 3
    for name in names:
        status = cluster.status(name)
        widths = [s["width"] for s in status["sizes"]]
        assert all(s["phase"] == "Succeeded" and s["step"] == 600 for s in status["sizes"])
        assert len(cluster.recorded(name)) == 4 * len(widths), "no lost result"
        assert [s["measurements"]["recorded"] for s in status["sizes"]] == [4] * len(widths)
        summary = {k: v for k, v in status["summary"].items() if k != "measured"}
        assert summary == cluster.summary_of_record(name)
        assert [c["status"] for c in status["conditions"]] == ["True", "False", "False", "False"]
    events = Counter((e["involvedObject"]["name"], e["reason"], e["message"]) for e in cluster.events())
    assert max(events.values()) == 1, "an Event is never posted twice"


def test_two_hundred_experiments_are_all_reconciled(operator_process, cluster):
    base = tiny(cluster.ns)
    for i in range(200):
        exp = with_changes(base, **{"ladder.widths": [32, 64, 96]})
        exp["metadata"]["name"] = f"many-{i:03d}"
        cluster.create(exp)

    def all_reconciled():
        _, body = cluster.http.get(f"/apis/ladder.dev/v1alpha1/namespaces/{cluster.ns}/scalingexperiments")
        return all(
            (e.get("status") or {}).get("phase") == "Pending" and len(e["status"].get("sizes") or []) == 3
            for e in body["items"]
        )

    wait_for("200 experiments reconciled", all_reconciled, timeout=120, interval=1.0)
    jobsets = cluster.jobsets()
    assert len(jobsets) == 400 and all(n.endswith(("-c32", "-c64")) for n in jobsets)
