"""The status writer against the local API server, which enforces server-side apply's ownership:
an apply removes what its manager applied before and now leaves out. The list-map written is
status.sizes (keyed by width), the one the trainers and evaluators share with the operator."""

from __future__ import annotations

import contextlib
import math
import random

import pytest

from ladder_kube.client import Client
from ladder_kube.credentials import load_credentials
from ladder_kube.errors import ApiError
from ladder_kube.ownership import (
    incarnation_manager,
    is_newer,
    merge_fragment,
    new_incarnation,
    yield_to_newer,
)
from ladder_kube.retry import Backoff
from ladder_kube.status import StatusWriter, apply_status
from ladder_testing.apiserver.client import Http
from ladder_testing.apiserver.fixture import free_port, running_apiserver, write_kubeconfig
from tests.kube.conftest import new_experiment


def entry(i: int, value: float = 1.0) -> dict:
    """Size entry i (width 16 (i + 1)) as a trainer reports it."""
    return {"width": 16 * (i + 1), "step": i + 1, "totalSteps": 100, "loss": value}


def status(url: str, name: str) -> dict:
    code, obj = Http(url).get(f"/apis/ladder.dev/v1alpha1/namespaces/default/scalingexperiments/{name}")
    assert code == 200
    return obj.get("status") or {}


def widths(url: str, name: str) -> set[int]:
    return {s["width"] for s in status(url, name).get("sizes") or []}


def test_merge_fragment_merges_list_maps_by_key_and_maps_by_field():
    ready = {"type": "Ready", "status": "False", "reason": "SizesRemaining"}
    owned = {"sizes": [entry(0), entry(1)], "conditions": [ready]}
    fragment = {"sizes": [{"width": 32, "loss": 9.0}, entry(2)],
                "conditions": [{"type": "Ready", "status": "True"}]}
    out = merge_fragment(owned, fragment)
    assert [s["width"] for s in out["sizes"]] == [16, 32, 48]
    assert out["sizes"][1] == {**entry(1), "loss": 9.0}, "a field left out is kept"
    assert out["conditions"] == [{**ready, "status": "True"}]
    assert owned["sizes"] == [entry(0), entry(1)] and owned["conditions"] == [ready], "pure"


def test_managers_are_per_process_and_sort_by_start_time():
    assert incarnation_manager("ladder-evaluator-c16", "abc") == "ladder-evaluator-c16-abc"
    a, b = incarnation_manager("x"), incarnation_manager("x")
    assert a != b and a.startswith("x-")
    old = incarnation_manager("ladder-evaluator-c16", new_incarnation(now=1_800_000_000))
    new = incarnation_manager("ladder-evaluator-c16", new_incarnation(now=1_800_000_001))
    assert is_newer(new, old) and not is_newer(old, new)
    assert not is_newer(incarnation_manager("ladder-evaluator-c32", new_incarnation(now=1_900_000_000)), old)
    with pytest.raises(ValueError, match="128"):
        incarnation_manager("m" * 130)
    with pytest.raises(ValueError, match="lower-case"):
        incarnation_manager("m", "a-b")


def test_non_finite_numbers_are_refused_before_they_poison_the_share(client, experiment):
    w = StatusWriter(client, "default", experiment, "ladder-trainer-c16")
    with pytest.raises(ValueError, match=r"status.sizes\[0\].loss is nan"):
        w.apply({"sizes": [entry(0, value=math.nan)]})
    w.apply({"sizes": [entry(1)]})  # the refused fragment is not in the share
    assert widths(client.creds.server, experiment) == {32}


def test_a_restarted_writer_and_the_old_one_applying_late_lose_nothing(client, experiment):
    """A JobSet restart: the new pod starts while the old one, in its grace period, still writes."""
    old_pod, new_pod = new_incarnation(now=1_800_000_000), new_incarnation(now=1_800_000_600)
    old = StatusWriter(client, "default", experiment, "ladder-writer", incarnation=old_pod)
    old.apply({"sizes": [entry(0), entry(1)]})
    new = StatusWriter(client, "default", experiment, "ladder-writer", incarnation=new_pod)
    assert {s["width"] for s in new.read()["status"]["sizes"]} == {16, 32}
    new.apply({"sizes": [entry(2)]})
    old.apply({"sizes": [entry(3)]})  # late
    new.apply({"sizes": [entry(4), entry(1, value=5.0)]})  # and a new value in an old entry
    old.apply({"sizes": [entry(5)]})  # late again: must not revert the new value
    server = client.creds.server
    assert widths(server, experiment) == {16 * (i + 1) for i in range(6)}
    values = {s["width"]: s["loss"] for s in status(server, experiment)["sizes"]}
    assert values == {**{16 * (i + 1): 1.0 for i in range(6)}, 32: 5.0}


def test_a_restarted_trainer_and_the_old_one_never_remove_or_revert_each_others_fields(client, experiment):
    old_pod, new_pod = new_incarnation(now=1_800_000_000), new_incarnation(now=1_800_000_600)
    old = StatusWriter(client, "default", experiment, "ladder-trainer-c16", incarnation=old_pod)
    old.apply(
        {"sizes": [{"width": 16, "step": 100, "loss": 0.5, "checkpointStep": 100, "checkpointUri": "u"}]}
    )
    new = StatusWriter(client, "default", experiment, "ladder-trainer-c16", incarnation=new_pod)
    new.apply({"sizes": [{"width": 16, "step": 100, "totalSteps": 200}]})
    new.apply({"sizes": [{"width": 16, "step": 110, "loss": 0.4}]})
    old.apply({"sizes": [{"width": 16, "step": 101, "loss": 0.45}]})  # late: the new pod's values stay
    (size,) = status(client.creds.server, experiment)["sizes"]
    assert size == {
        "width": 16,
        "step": 110,
        "totalSteps": 200,
        "loss": 0.4,
        "checkpointStep": 100,
        "checkpointUri": "u",
    }
    new.apply({"sizes": [{"width": 16, "step": 120}]})  # a report without loss keeps the loss
    assert status(client.creds.server, experiment)["sizes"][0]["loss"] == 0.4


def test_control_one_manager_shared_by_two_processes_loses_entries(client, experiment):
    """What the writer avoids really loses entries on this server, so the test above could fail:
    the old scheme (one manager per width, each pod applying what it knows) after a restart."""
    shared = "ladder-writer"
    apply_status(client, "default", experiment, {"sizes": [entry(0), entry(1)]}, manager=shared)
    apply_status(client, "default", experiment, {"sizes": [entry(0), entry(1), entry(2)]}, manager=shared)
    apply_status(client, "default", experiment, {"sizes": [entry(0), entry(1), entry(3)]}, manager=shared)
    assert 48 not in widths(client.creds.server, experiment)


def test_the_operators_complete_share_removes_what_it_no_longer_sets(client, experiment):
    conds = [{"type": "Ready", "status": "False"}, {"type": "Degraded", "status": "True"}]
    apply_status(client, "default", experiment, {"phase": "Running", "conditions": conds}, manager="op")
    StatusWriter(client, "default", experiment, "ladder-trainer-c16").apply({"sizes": [entry(0)]})
    apply_status(client, "default", experiment, {"phase": "Running", "conditions": conds[:1]}, manager="op")
    got = status(client.creds.server, experiment)
    assert [c["type"] for c in got["conditions"]] == ["Ready"] and got["sizes"] == [entry(0)]


def test_a_writer_waits_out_an_api_server_that_comes_back(tmp_path):
    """The API server is down when the writer starts and comes up during its backoff: the write
    lands after the retries."""
    port = free_port()
    kc = write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{port}")
    client = Client(load_credentials(str(kc)), user_agent="t/0")
    with pytest.raises(ApiError) as info:
        StatusWriter(client, "default", "sx-outage", "m").read()  # control: no backoff, one attempt
    assert info.value.transient
    slept: list[float] = []
    with contextlib.ExitStack() as stack:

        def sleep(delay: float) -> None:
            slept.append(delay)
            if len(slept) == 3:  # the server is back after the third failed attempt
                api = stack.enter_context(running_apiserver(tmp_path / "api", port=port))
                new_experiment(api.url, name="sx-outage")

        w = StatusWriter(
            client,
            "default",
            "sx-outage",
            "ladder-trainer-c16",
            backoff=Backoff(first_s=0.5, max_s=4, budget_s=30),
            sleep=sleep,
            rng=random.Random(0),
        )
        w.apply({"sizes": [entry(0)]})
        assert len(slept) == 3 and widths(f"http://127.0.0.1:{port}", "sx-outage") == {16}


def test_yield_to_newer_reads_a_real_servers_managed_fields():
    """fieldsV1 as kube-apiserver writes it: the newer writer's fields leave the share, the entry
    and its key stay, an older or unrelated manager takes nothing."""
    me = "ladder-trainer-c16-" + new_incarnation(now=1_800_000_000)
    newer = "ladder-trainer-c16-" + new_incarnation(now=1_800_000_060)
    older = "ladder-trainer-c16-" + new_incarnation(now=1_700_000_000)
    ready = {"type": "Ready", "status": "False", "message": "m"}
    share = {"sizes": [entry(0), entry(1)], "conditions": [ready]}
    owned = {".": {}, "f:width": {}, "f:loss": {}, "f:step": {}}
    managed = [
        {
            "manager": newer,
            "operation": "Apply",
            "subresource": "status",
            "fieldsV1": {
                "f:status": {
                    "f:sizes": {'k:{"width":32}': owned},
                    "f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:message": {}}},
                }
            },
        },
        {
            "manager": older,
            "operation": "Apply",
            "subresource": "status",
            "fieldsV1": {"f:status": {"f:sizes": {'k:{"width":16}': owned}}},
        },
        {
            "manager": "ladder-operator",
            "operation": "Apply",
            "subresource": "status",
            "fieldsV1": {"f:status": {"f:phase": {}}},
        },
    ]
    out = yield_to_newer(share, managed, me)
    s16, s32 = out["sizes"]
    assert s16 == entry(0) and s32["width"] == 32 and "loss" not in s32 and "step" not in s32
    assert s32["totalSteps"] == 100, "fields the newer writer does not own stay in the share"
    assert out["conditions"] == [{"type": "Ready", "status": "False"}]
    assert share["sizes"][1] == entry(1) and share["conditions"] == [ready], "pure"
