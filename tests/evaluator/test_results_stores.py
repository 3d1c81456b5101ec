"""Result stores: the run's results folder (write-once objects merged by id; its concurrency is
tested in tests/api/test_artifacts.py) as the evaluator uses it, and the cluster store, which
writes the same folder and reports progress in the experiment's status with server-side apply:
16 concurrent evaluators, a restarted pod beside the old one, a deleted experiment and an API
server that is away, against the local API server (which enforces SSA list-map ownership)."""

from __future__ import annotations

import threading
import time

import pytest

from ladder_api import artifacts, storage
from ladder_api.frontier import sampling_cost
from ladder_api.status import Result, result_id
from ladder_evaluator.main import make_store
from ladder_evaluator.status_store import ClusterStore, manager_base
from ladder_kube.ownership import new_incarnation
from ladder_kube.status import StatusWriter


def res(width: int, i: int, value: float = 1.0) -> Result:
    steps = 4 + i
    paper, with_g = sampling_cost(0.1, steps, 2.0)
    return Result(
        id=result_id(width, 100, "ddim", steps, 2.0, "fid-digits-classifier"), width=width,
        checkpoint_step=100,
        sampler="ddim", steps=steps, guidance=2.0, metric="fid-digits-classifier", value=value,
        num_samples=10, gflops_per_forward=1.0, sampling_cost=paper, sampling_cost_with_guidance=with_g,
    )


def test_outside_a_cluster_results_go_to_the_results_folder_and_are_never_duplicated(tmp_path):
    from ladder_api.plan import expand
    from tests.local.conftest import tiny_experiment

    run = expand(tiny_experiment(), root=str(tmp_path)).runs[0]
    store = make_store(run, "auto", None)
    assert store.existing() == {}
    store.write([res(8, 0), res(8, 1)])
    store.write([res(8, 1, value=7.0), res(8, 2)])
    got = artifacts.read_results(run.paths.results)
    assert [r.id for r in got] == sorted({res(8, i).id for i in range(3)})
    assert {r.id: r.value for r in got}[res(8, 1).id] == 7.0
    assert len(storage.list_files(run.paths.results)) == 2  # one object per write, no temporary left
    assert set(make_store(run, "file", str(tmp_path / "elsewhere")).existing()) == set()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from ladder_testing.apiserver.fixture import running_apiserver

    with running_apiserver(tmp_path_factory.mktemp("apiserver")) as server:
        yield server


@pytest.fixture()
def experiment(api):
    import uuid

    from ladder_testing.apiserver.client import Http

    name = f"sx-{uuid.uuid4().hex[:8]}"
    code, _ = Http(api.url).post(
        "/apis/ladder.dev/v1alpha1/namespaces/default/scalingexperiments",
        {"apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": name},
         "spec": {}},
    )
    assert code == 201
    return name


def _client(api):
    from ladder_kube.client import Client
    from ladder_kube.credentials import load_credentials

    return Client(load_credentials(str(api.kubeconfig)), user_agent="ladder-evaluator/test")


def _store(api, name, width, folder, *, incarnation=None, every_s=0.0, backoff=None,
           worker=0) -> ClusterStore:
    writer = StatusWriter(_client(api), "default", name, manager_base(width, worker), incarnation=incarnation,
                          backoff=backoff)
    return ClusterStore(artifacts.ResultsStore(str(folder / f"c{width}" / "results")), writer, width,
                        report_every_s=every_s)


def _object(api, name) -> dict:
    from ladder_testing.apiserver.client import Http

    code, obj = Http(api.url).get(f"/apis/ladder.dev/v1alpha1/namespaces/default/scalingexperiments/{name}")
    assert code == 200
    return obj


def _reports(api, name) -> dict[int, dict]:
    sizes = (_object(api, name).get("status") or {}).get("sizes") or []
    return {s["width"]: s.get("evaluator") for s in sizes}


def test_sixteen_concurrent_evaluators_lose_nothing_and_the_status_holds_only_progress(
        api, experiment, tmp_path):
    widths = [8 * (k + 1) for k in range(16)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(widths))

    def evaluator(width: int) -> None:
        try:
            store = _store(api, experiment, width, tmp_path)
            start.wait()
            for batch in range(3):  # results arrive in several writes, as the grid advances
                store.write([res(width, 2 * batch), res(width, 2 * batch + 1)])
            store.flush()
        except BaseException as err:  # noqa: BLE001 (asserted below)
            errors.append(err)

    threads = [threading.Thread(target=evaluator, args=(w,)) for w in widths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for w in widths:
        got = artifacts.read_results(str(tmp_path / f"c{w}" / "results"))
        assert [r.id for r in got] == sorted({res(w, i).id for i in range(6)})
    reports = _reports(api, experiment)
    assert {w: r["recorded"] for w, r in reports.items()} == dict.fromkeys(widths, 6)
    assert "results" not in _object(api, experiment)["status"]

    # A restarted pod of one size (a fresh writer) finds what is recorded in storage, measures
    # one again and a new one; its report replaces its predecessor's, nobody else's moves.
    # Incarnations are ordered by their start second: the replacement starts a second later, as a
    # restarted pod does (within one second the order would be the random suffix's).
    from ladder_kube.ownership import new_incarnation

    again = _store(api, experiment, 16, tmp_path, incarnation=new_incarnation(time.time() + 1))
    assert set(again.existing()) == {res(16, i).id for i in range(6)}
    again.write([res(16, 0, value=42.0), res(16, 6)])
    again.flush()  # progress is reported at most every report_every_s: the end of a pod flushes
    merged = {r.id: r for r in artifacts.read_results(str(tmp_path / "c16" / "results"))}
    assert len(merged) == 7 and merged[res(16, 0).id].value == 42.0
    after = _reports(api, experiment)
    assert after[16]["recorded"] == 7 and after[8] == reports[8]
    assert again.manager.startswith(manager_base(16) + "-") and manager_base(16) == "ladder-evaluator-c16-w0"


def test_the_old_pod_reporting_late_after_a_restart_never_reverts_the_new_report(api, experiment, tmp_path):
    """A JobSet restart: the new pod reads what exists and writes; the old pod, still in its grace
    period, writes and reports late; every result stays in storage, and the status shows the new
    pod's report (the newer incarnation wins; ladder_kube.status)."""
    old = _store(api, experiment, 16, tmp_path, incarnation=new_incarnation(now=1_800_000_000))
    old.write([res(16, 0), res(16, 1)])
    new = _store(api, experiment, 16, tmp_path, incarnation=new_incarnation(now=1_800_000_300))
    assert set(new.existing()) == {res(16, 0).id, res(16, 1).id}
    new.write([res(16, 2)])
    old.write([res(16, 3)])
    new.write([res(16, 4)])
    old.write([res(16, 5)])
    got = artifacts.read_results(str(tmp_path / "c16" / "results"))
    assert {r.id for r in got} == {res(16, i).id for i in range(6)}
    assert _reports(api, experiment)[16]["recorded"] == 4, "the new pod's count (2 found + 2 written)"


def test_a_second_writer_reporting_the_same_count_still_changes_the_report(api, experiment, tmp_path):
    """Two evaluator workers of one size, each one result, one right after the other (the same
    second): the operator re-reads a size's results when the report it sees changed
    (ladder_operator.results), so the second report must differ from the first although its count
    is the same; with whole-second times it did not, and the second writer's result stayed out of
    the digest until the evaluation JobSet changed."""
    first = _store(api, experiment, 32, tmp_path, incarnation=new_incarnation(now=1_800_000_000))
    second = _store(api, experiment, 32, tmp_path, incarnation=new_incarnation(now=1_800_000_001))
    first.write([res(32, 0)])
    seen = _reports(api, experiment)[32]
    second.write([res(32, 1)])
    now = _reports(api, experiment)[32]
    assert seen["recorded"] == now["recorded"] == 1
    assert now != seen


def test_every_worker_of_a_size_wakes_the_operator_whichever_started_first(api, experiment, tmp_path):
    """evaluation.workers: two workers of one size side by side. The one started earlier reports
    after the later one: its report must still land (the operator re-reads the size's results when
    the report changes). Under one field manager base the later-started worker counted as the
    newer incarnation and the earlier one's report was dropped."""
    early = _store(api, experiment, 40, tmp_path, worker=1, incarnation=new_incarnation(now=1_800_000_000))
    late = _store(api, experiment, 40, tmp_path, worker=0, incarnation=new_incarnation(now=1_800_000_300))
    late.write([res(40, 0), res(40, 1)])
    assert _reports(api, experiment)[40]["recorded"] == 2
    early.write([res(40, 2)])
    assert _reports(api, experiment)[40]["recorded"] == 1, "the last report wins, whoever wrote it"
    late.write([res(40, 3)])
    assert _reports(api, experiment)[40]["recorded"] == 3
    assert {r.id for r in artifacts.read_results(str(tmp_path / "c40" / "results"))} == {
        res(40, i).id for i in range(4)}


def test_reports_are_rate_limited_and_flushed_at_the_end(api, experiment, tmp_path):
    store = _store(api, experiment, 24, tmp_path, every_s=3600.0)
    store.write([res(24, 0)])  # the first write reports at once
    rv = _object(api, experiment)["metadata"]["resourceVersion"]
    store.write([res(24, 1)])
    store.write([res(24, 2)])
    assert _object(api, experiment)["metadata"]["resourceVersion"] == rv, "no apply within the interval"
    store.flush()
    assert _reports(api, experiment)[24]["recorded"] == 3
    rv = _object(api, experiment)["metadata"]["resourceVersion"]
    store.flush()
    assert _object(api, experiment)["metadata"]["resourceVersion"] == rv, "nothing pending: no apply"


def test_a_missing_experiment_is_a_user_error(api, tmp_path):
    from ladder_api.errors import UserError

    with pytest.raises(UserError, match="default/gone not found"):
        _store(api, "gone", 16, tmp_path).write([res(16, 0)])


def test_an_api_server_away_never_stops_the_evaluation(tmp_path, caplog):
    """The report is a wake-up call: results are stored, the failed report is logged."""
    from ladder_kube.client import Client
    from ladder_kube.credentials import load_credentials
    from ladder_kube.retry import Backoff
    from ladder_testing.apiserver.fixture import free_port, write_kubeconfig

    kc = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{free_port()}")
    writer = StatusWriter(Client(load_credentials(str(kc)), user_agent="t"), "default", "sx", manager_base(8),
                          backoff=Backoff(first_s=0.01, max_s=0.02, budget_s=0.1))
    store = ClusterStore(artifacts.ResultsStore(str(tmp_path / "results")), writer, 8, report_every_s=0.0)
    store.write([res(8, 0)])
    store.flush()
    assert [r.id for r in artifacts.read_results(str(tmp_path / "results"))] == [res(8, 0).id]
    assert "progress report to the experiment's status failed" in caplog.text


def test_a_non_finite_measurement_is_stored_as_a_failure_and_the_status_stays_writable(
        api, experiment, tmp_path):
    """A NaN FID made every later status apply fail (400 on a real server) and the evaluator exit
    1. Now it is a failed measurement, with its reason, in storage; the next report applies."""
    store = _store(api, experiment, 32, tmp_path)
    store.write([res(32, 0, value=float("nan")), res(32, 1, value=float("inf")), res(32, 2, value=3.0)])
    store.write([res(32, 3)])
    got = {r.id: r for r in artifacts.read_results(str(tmp_path / "c32" / "results"))}
    assert got[res(32, 0).id].value is None and "nan" in got[res(32, 0).id].error
    assert got[res(32, 1).id].failed and not got[res(32, 2).id].failed
    assert _reports(api, experiment)[32]["recorded"] == 4
    text = (tmp_path / "c32" / "results").glob("*.json")
    assert not any("NaN" in p.read_text() or "Infinity" in p.read_text() for p in text)
