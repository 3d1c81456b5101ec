"""Result stores: the run's results folder (write-once objects merged by id; its concurrency is
tested in tests/api/test_artifacts.py) as the evaluator uses it, and the cluster status written
with server-side apply by 16 concurrent writers, and by a restarted pod beside the old one,
against the local API server, which enforces resourceVersion conflicts and SSA list-map
ownership."""

from __future__ import annotations

import threading

import pytest

from ladder_api import artifacts, storage
from ladder_api.frontier import sampling_cost
from ladder_api.status import Result, result_id
from ladder_evaluator.main import make_store
from ladder_evaluator.status_store import StatusStore, manager_base
from ladder_kube.ownership import new_incarnation


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


def _status_results(api, name) -> list[dict]:
    from ladder_testing.apiserver.client import Http

    code, obj = Http(api.url).get(f"/apis/ladder.dev/v1alpha1/namespaces/default/scalingexperiments/{name}")
    assert code == 200
    return (obj.get("status") or {}).get("results") or []


def test_sixteen_concurrent_evaluators_lose_nothing_and_duplicate_nothing(api, experiment):
    widths = [8 * (k + 1) for k in range(16)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(widths))

    def evaluator(width: int) -> None:
        try:
            store = StatusStore(_client(api), "default", experiment, width)
            start.wait()
            for batch in range(3):  # results arrive in several writes, as the grid advances
                store.write([res(width, 2 * batch), res(width, 2 * batch + 1)])
        except BaseException as err:  # noqa: BLE001 (asserted below)
            errors.append(err)

    threads = [threading.Thread(target=evaluator, args=(w,)) for w in widths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = [r["id"] for r in _status_results(api, experiment)]
    assert len(ids) == len(set(ids)) == 16 * 6
    assert set(ids) == {res(w, i).id for w in widths for i in range(6)}

    # A restarted pod of one size (a fresh writer) updates in place and keeps the entries its
    # predecessor wrote, and nobody else's entries move.
    again = StatusStore(_client(api), "default", experiment, 16)
    assert set(again.existing()) == set(ids)
    again.write([res(16, 0, value=42.0), res(16, 6)])
    after = {r["id"]: r for r in _status_results(api, experiment)}
    assert len(after) == 16 * 6 + 1
    assert after[res(16, 0).id]["value"] == 42.0 and res(16, 5).id in after
    assert again.manager.startswith(manager_base(16) + "-") and manager_base(16) == "ladder-evaluator-c16"


def test_the_old_pod_writing_late_after_a_restart_loses_nothing(api, experiment):
    """A JobSet restart: the new pod reads what exists and writes; the old pod, still in its grace
    period, writes late; neither erases the other's entries (one field manager shared by both
    did: each apply dropped what the other had written)."""
    old = StatusStore(_client(api), "default", experiment, 16, incarnation=new_incarnation(now=1_800_000_000))
    old.write([res(16, 0), res(16, 1)])
    new = StatusStore(_client(api), "default", experiment, 16, incarnation=new_incarnation(now=1_800_000_300))
    assert set(new.existing()) == {res(16, 0).id, res(16, 1).id}
    new.write([res(16, 2)])
    old.write([res(16, 3)])
    new.write([res(16, 4)])
    old.write([res(16, 5)])
    assert {r["id"] for r in _status_results(api, experiment)} == {res(16, i).id for i in range(6)}


def test_a_missing_experiment_is_a_user_error(api):
    from ladder_api.errors import UserError

    with pytest.raises(UserError, match="default/gone not found"):
        StatusStore(_client(api), "default", "gone", 16).existing()
    with pytest.raises(UserError, match="default/gone not found"):
        StatusStore(_client(api), "default", "gone", 16).write([res(16, 0)])


def test_the_server_would_catch_a_lost_update(api, experiment):
    """Control: the write style the SSA writer avoids really loses entries on this server, and a
    stale resourceVersion really gets 409, so the test above could fail."""
    from ladder_testing.apiserver.client import Http

    http = Http(api.url)
    path = f"/apis/ladder.dev/v1alpha1/namespaces/default/scalingexperiments/{experiment}/status"
    StatusStore(_client(api), "default", experiment, 8).write([res(8, 0)])
    StatusStore(_client(api), "default", experiment, 16).write([res(16, 0)])
    _, obj = http.get(path)
    stale_rv = obj["metadata"]["resourceVersion"]
    http.merge(path, {"status": {"results": [res(32, 0).to_wire()]}})
    assert [r["id"] for r in _status_results(api, experiment)] == [res(32, 0).id]
    code, _ = http.merge(path, {"metadata": {"resourceVersion": stale_rv}, "status": {"results": []}})
    assert code == 409
