"""The local API server keeps the Kubernetes semantics the operator relies on.

Each test names one guarantee of a real API server and checks it over HTTP, mostly through the
official `kubernetes` client so that what passes here also parses there.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from ladder_testing.apiserver.client import Http

SX = ("ladder.dev", "v1alpha1", "scalingexperiments")
JS = ("jobset.x-k8s.io", "v1alpha2", "jobsets")


def sx_path(ns="default", name=None, sub=None):
    p = f"/apis/ladder.dev/v1alpha1/namespaces/{ns}/scalingexperiments"
    return p + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


def new_name(prefix="x"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def api_client(apiserver):
    return k8s_config.new_client_from_config(config_file=str(apiserver.kubeconfig))


@pytest.fixture(scope="module")
def http(apiserver):
    return Http(apiserver.url)


def sx_body(name, widths=(32, 64)):
    return {
        "apiVersion": "ladder.dev/v1alpha1",
        "kind": "ScalingExperiment",
        "metadata": {"name": name},
        "spec": {"ladder": {"widths": list(widths)}},
    }


def test_discovery_lists_core_and_custom_resources(api_client):
    groups = {g.name: g for g in k8s.ApisApi(api_client).get_api_versions().groups}
    assert {"ladder.dev", "jobset.x-k8s.io", "kueue.x-k8s.io", "rbac.authorization.k8s.io"} <= set(groups)
    assert groups["kueue.x-k8s.io"].preferred_version.version == "v1beta2"
    core = k8s.CoreV1Api(api_client).get_api_resources()
    names = {r.name for r in core.resources}
    assert {"namespaces", "configmaps", "serviceaccounts", "events", "pods"} <= names
    custom = k8s.CustomObjectsApi(api_client).get_api_resources("ladder.dev", "v1alpha1")
    assert {r.name for r in custom.resources} == {"scalingexperiments", "scalingexperiments/status"}


def test_create_answers_201_with_server_fields(api_client, http):
    cm = k8s.CoreV1Api(api_client).create_namespaced_config_map(
        "default", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=new_name()), data={"a": "1"})
    )
    assert cm is not None and cm.metadata.uid and cm.metadata.resource_version
    assert cm.metadata.creation_timestamp is not None
    code, body = http.post(sx_path(), sx_body(new_name()))
    assert code == 201 and body["metadata"]["generation"] == 1 and "status" not in body


def test_already_exists_and_not_found(http):
    name = new_name()
    assert http.post(sx_path(), sx_body(name))[0] == 201
    code, body = http.post(sx_path(), sx_body(name))
    assert (code, body["reason"]) == (409, "AlreadyExists")
    code, body = http.get(sx_path(name="missing"))
    assert (code, body["reason"]) == (404, "NotFound")
    code, body = http.post("/api/v1/namespaces/nope/configmaps", {"metadata": {"name": "a"}})
    assert code == 404


def test_resource_versions_increase_globally_and_stale_writes_conflict(http):
    name = new_name()
    _, a = http.post(sx_path(), sx_body(name))
    _, b = http.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": new_name()}})
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    stale = dict(a)
    code, updated = http.put(sx_path(name=name), {**a, "spec": {"ladder": {"widths": [32]}}})
    assert code == 200 and updated["metadata"]["generation"] == 2
    code, body = http.put(sx_path(name=name), {**stale, "spec": {"ladder": {"widths": [8]}}})
    assert (code, body["reason"]) == (409, "Conflict")
    code, _ = http.merge(
        sx_path(name=name),
        {"metadata": {"resourceVersion": stale["metadata"]["resourceVersion"], "labels": {"a": "b"}}},
    )
    assert code == 409
    code, fresh = http.merge(sx_path(name=name), {"metadata": {"labels": {"a": "b"}}})
    assert code == 200 and fresh["metadata"]["generation"] == 2, "metadata changes leave generation alone"


def test_failed_json_patch_test_is_422_and_changes_nothing(http):
    name = new_name()
    _, obj = http.post(sx_path(), sx_body(name))
    rv = obj["metadata"]["resourceVersion"]
    code, body = http.jsonpatch(
        sx_path(name=name),
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
        ],
    )
    assert code == 422
    code, body = http.jsonpatch(
        sx_path(name=name),
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
        ],
    )
    assert code == 200 and body["metadata"]["finalizers"] == ["x/y"]


def test_status_subresource_is_separate(http):
    name = new_name()
    _, obj = http.post(sx_path(), {**sx_body(name), "status": {"phase": "Smuggled"}})
    assert "status" not in obj
    code, obj = http.merge(sx_path(name=name), {"status": {"phase": "Main"}, "spec": {"suspend": True}})
    assert code == 200 and "status" not in obj and obj["metadata"]["generation"] == 2
    code, obj = http.merge(
        sx_path(name=name, sub="status"), {"status": {"phase": "Running"}, "spec": {"suspend": False}}
    )
    assert obj["status"] == {"phase": "Running"} and obj["spec"]["suspend"] is True
    assert obj["metadata"]["generation"] == 2, "status writes never bump generation"
    code, obj = http.put(sx_path(name=name, sub="status"), {**obj, "status": {"phase": "Pending"}})
    assert code == 200 and obj["status"]["phase"] == "Pending"


def test_noop_write_keeps_resource_version(http):
    name = new_name()
    _, obj = http.post(sx_path(), sx_body(name))
    _, again = http.merge(sx_path(name=name), {"spec": obj["spec"]})
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def _sizes(manager_index: int, n: int, step: int = 1) -> list[dict]:
    """n entries of status.sizes (a list-map keyed by width) that only one manager writes."""
    return [{"width": 1000 * (manager_index + 1) + i, "step": step} for i in range(n)]


def _apply_status(name, sizes=None):
    status = {}
    if sizes is not None:
        status["sizes"] = sizes
    return {
        "apiVersion": "ladder.dev/v1alpha1",
        "kind": "ScalingExperiment",
        "metadata": {"name": name},
        "status": status,
    }


def test_server_side_apply_keeps_every_managers_list_entries(api_client, http):
    name = new_name()
    http.post(sx_path(), sx_body(name))
    custom = k8s.CustomObjectsApi(api_client)
    errors = []

    def writer(i):
        try:
            for _ in range(3):  # repeated applies of the same set update in place
                custom.patch_namespaced_custom_object_status(
                    *SX[:2],
                    "default",
                    SX[2],
                    name,
                    _apply_status(name, sizes=_sizes(i, 4)),
                    field_manager=f"ladder-evaluator-c{i}",
                    _content_type="application/apply-patch+yaml",
                )
        except Exception as err:  # noqa: BLE001 (collected and asserted below)
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _, obj = http.get(sx_path(name=name))
    widths = sorted(s["width"] for s in obj["status"]["sizes"])
    assert widths == sorted(1000 * (i + 1) + j for i in range(16) for j in range(4))
    managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
    assert {f"ladder-evaluator-c{i}" for i in range(16)} <= managers
    # A manager applying a new value updates its own entry; dropping one removes only its own.
    code, obj = http.apply(
        sx_path(name=name, sub="status"),
        _apply_status(name, sizes=_sizes(0, 2, step=9)),
        "ladder-evaluator-c0",
    )
    assert code == 200
    by_width = {s["width"]: s for s in obj["status"]["sizes"]}
    assert by_width[1000]["step"] == 9 and 1003 not in by_width and 2003 in by_width
    assert len(by_width) == 16 * 4 - 2


def test_server_side_apply_shares_keyed_entries_between_managers(http):
    name = new_name()
    http.post(sx_path(), sx_body(name))
    http.apply(
        sx_path(name=name, sub="status"),
        _apply_status(name, sizes=[{"width": 32, "phase": "Training"}]),
        "ladder-operator",
    )
    code, obj = http.apply(
        sx_path(name=name, sub="status"),
        _apply_status(name, sizes=[{"width": 32, "step": 100}]),
        "ladder-trainer-c32",
    )
    assert obj["status"]["sizes"] == [{"width": 32, "phase": "Training", "step": 100}]
    code, obj = http.apply(
        sx_path(name=name, sub="status"),
        _apply_status(name, sizes=[{"width": 32, "phase": "Evaluating"}]),
        "ladder-operator",
    )
    assert obj["status"]["sizes"] == [{"width": 32, "phase": "Evaluating", "step": 100}]
    # Another manager setting a field the operator owns to a different value conflicts...
    code, body = http.apply(
        sx_path(name=name, sub="status"),
        _apply_status(name, sizes=[{"width": 32, "phase": "Failed"}]),
        "intruder",
    )
    assert code == 409 and body["reason"] == "Conflict"
    # ...unless forced, which takes the field over.
    code, obj = http.apply(
        sx_path(name=name, sub="status"),
        _apply_status(name, sizes=[{"width": 32, "phase": "Failed"}]),
        "intruder",
        force=True,
    )
    assert code == 200 and obj["status"]["sizes"][0]["phase"] == "Failed"
    # The trainer's field survives the operator dropping the entry from its applied set.
    code, obj = http.apply(sx_path(name=name, sub="status"), _apply_status(name, sizes=[]), "ladder-operator")
    assert obj["status"]["sizes"] == [{"width": 32, "phase": "Failed", "step": 100}]


def test_merge_patch_replaces_lists_whole(http):
    """The behaviour that makes merge patches unsafe for shared lists, reproduced on purpose."""
    name = new_name()
    http.post(sx_path(), sx_body(name))
    http.apply(sx_path(name=name, sub="status"), _apply_status(name, sizes=_sizes(1, 2)), "a")
    _, obj = http.merge(sx_path(name=name, sub="status"), {"status": {"sizes": _sizes(2, 1)}})
    assert [s["width"] for s in obj["status"]["sizes"]] == [3000]


def test_apply_creates_missing_objects(http):
    name = new_name()
    code, obj = http.apply(sx_path(name=name), sx_body(name), "ladder-test")
    assert code == 201 and obj["metadata"]["uid"]
    code, _ = http.apply(sx_path(name=new_name(), sub="status"), _apply_status("x"), "m")
    assert code in (400, 404)


def test_label_and_field_selectors(api_client):
    core = k8s.CoreV1Api(api_client)
    tag = uuid.uuid4().hex[:6]
    for i, tier in enumerate(["a", "b", "c"]):
        core.create_namespaced_config_map(
            "default",
            k8s.V1ConfigMap(
                metadata=k8s.V1ObjectMeta(name=f"sel-{tag}-{i}", labels={"tag": tag, "tier": tier})
            ),
        )

    def names(sel, fields=None):
        items = core.list_namespaced_config_map("default", label_selector=sel, field_selector=fields).items
        return sorted(c.metadata.name for c in items)

    assert names(f"tag={tag},tier=a") == [f"sel-{tag}-0"]
    assert names(f"tag={tag},tier!=a") == [f"sel-{tag}-1", f"sel-{tag}-2"]
    assert names(f"tag={tag},tier in (a,c)") == [f"sel-{tag}-0", f"sel-{tag}-2"]
    assert names(f"tag={tag},tier notin (a,c)") == [f"sel-{tag}-1"]
    assert names(f"tag={tag},!tier") == []
    assert names(f"tag={tag}", f"metadata.name=sel-{tag}-1") == [f"sel-{tag}-1"]


def test_owner_references_cascade_and_finalizers_hold_deletion(http):
    name = new_name()
    _, owner = http.post(sx_path(), sx_body(name))
    ref = {
        "apiVersion": "ladder.dev/v1alpha1",
        "kind": "ScalingExperiment",
        "name": name,
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    js = f"/apis/jobset.x-k8s.io/v1alpha2/namespaces/default/jobsets/{name}-c32"
    code, _ = http.post(
        "/apis/jobset.x-k8s.io/v1alpha2/namespaces/default/jobsets",
        {"metadata": {"name": f"{name}-c32", "ownerReferences": [ref]}, "spec": {}},
    )
    assert code == 201
    http.post(
        "/api/v1/namespaces/default/configmaps",
        {"metadata": {"name": f"{name}-cm", "ownerReferences": [ref]}},
    )
    http.merge(sx_path(name=name), {"metadata": {"finalizers": ["ladder.dev/checkpoint-cleanup"]}})
    code, body = http.delete(sx_path(name=name))
    assert code == 200 and body["metadata"]["deletionTimestamp"]
    assert http.get(sx_path(name=name))[0] == 200 and http.get(js)[0] == 200, "held by the finalizer"
    code, body = http.merge(sx_path(name=name), {"metadata": {"finalizers": ["another/one"]}})
    assert code == 422, "no new finalizers while deleting"
    code, _ = http.merge(sx_path(name=name), {"metadata": {"finalizers": None}})
    assert code == 200
    assert http.get(sx_path(name=name))[0] == 404
    assert http.get(js)[0] == 404
    assert http.get(f"/api/v1/namespaces/default/configmaps/{name}-cm")[0] == 404


def test_watch_resumes_from_a_resource_version_and_410_when_too_old(apiserver, http):
    name = new_name()
    _, obj = http.post(sx_path(), sx_body(name))
    rv = obj["metadata"]["resourceVersion"]
    http.merge(sx_path(name=name), {"spec": {"suspend": True}})
    http.delete(sx_path(name=name))
    events = http.watch_lines(
        f"{sx_path()}?watch=1&resourceVersion={rv}&timeoutSeconds=1&fieldSelector=metadata.name={name}"
    )
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )
    http.request("POST", "/debug/compact", {})
    events = http.watch_lines(f"{sx_path()}?watch=1&resourceVersion={rv}&timeoutSeconds=1")
    assert events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410


def test_watch_without_version_lists_then_streams(http):
    name = new_name()
    http.post(sx_path(), sx_body(name))
    result = {}

    def read():
        result["events"] = http.watch_lines(
            f"{sx_path()}?watch=true&timeoutSeconds=3&fieldSelector=metadata.name={name}", max_events=2
        )

    t = threading.Thread(target=read)
    t.start()
    # The first (synthetic ADDED) event proves the watch is registered before the change below.
    deadline = __import__("time").monotonic() + 5
    while "events" not in result and __import__("time").monotonic() < deadline:
        http.merge(sx_path(name=name), {"metadata": {"labels": {"n": uuid.uuid4().hex[:6]}}})
        t.join(0.2)
    t.join()
    assert [e["type"] for e in result["events"]] == ["ADDED", "MODIFIED"]


def test_list_returns_a_resource_version_to_watch_from(api_client):
    custom = k8s.CustomObjectsApi(api_client)
    listed = custom.list_namespaced_custom_object(*SX[:2], "default", SX[2])
    assert int(listed["metadata"]["resourceVersion"]) > 0
    assert listed["kind"] == "ScalingExperimentList"


def test_kubernetes_client_raises_on_conflict(api_client):
    core = k8s.CoreV1Api(api_client)
    name = new_name()
    core.create_namespaced_config_map("default", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name)))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name)))
    assert err.value.status == 409


def test_generate_name_and_namespace_deletion_takes_its_contents(http):
    ns = new_name("ns")
    assert http.post("/api/v1/namespaces", {"metadata": {"name": ns}})[0] == 201
    code, cm = http.post(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"generateName": "cm-"}})
    assert code == 201 and cm["metadata"]["name"].startswith("cm-") and len(cm["metadata"]["name"]) == 8
    http.post(sx_path(ns), sx_body("inside"))
    assert http.delete(f"/api/v1/namespaces/{ns}")[0] == 200
    assert http.get(sx_path(ns, "inside"))[0] == 404
    assert http.get(f"/api/v1/namespaces/{ns}")[0] == 404
    assert http.post(sx_path(ns), sx_body("late"))[0] == 404


def test_delete_collection_by_label(http):
    tag = uuid.uuid4().hex[:6]
    for i in range(3):
        http.post(
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": f"dc-{tag}-{i}", "labels": {"dc": tag if i < 2 else "other"}}},
        )
    code, _ = http.delete(f"/api/v1/namespaces/default/configmaps?labelSelector=dc%3D{tag}")
    assert code == 200
    _, left = http.get("/api/v1/namespaces/default/configmaps?labelSelector=dc")
    assert [
        c["metadata"]["name"] for c in left["items"] if c["metadata"]["name"].startswith(f"dc-{tag}")
    ] == [f"dc-{tag}-2"]


def test_update_operations_take_ownership_from_appliers(http):
    """A field another client changed is no longer removed when its applier drops it."""
    name = new_name()
    http.post(sx_path(), sx_body(name))
    http.apply(
        sx_path(name=name, sub="status"), _apply_status(name, sizes=[{"width": 8, "message": "a"}]), "op"
    )
    http.merge(sx_path(name=name, sub="status") + "?fieldManager=kubectl", {"status": {"phase": "Suspended"}})
    _, obj = http.jsonpatch(
        sx_path(name=name, sub="status") + "?fieldManager=kubectl",
        [{"op": "replace", "path": "/status/sizes/0/message", "value": "b"}],
    )
    assert obj["status"]["sizes"][0]["message"] == "b"
    _, obj = http.apply(sx_path(name=name, sub="status"), _apply_status(name, sizes=[{"width": 8}]), "op")
    assert obj["status"]["sizes"] == [{"width": 8, "message": "b"}]
    assert obj["status"]["phase"] == "Suspended"


def test_unknown_fields_of_custom_resources_are_pruned(http):
    """As a real API server does with structural schemas: silently, so tests see the loss."""
    name = new_name()
    body = sx_body(name)
    body["spec"]["ladder"]["widthz"] = [1]
    _, obj = http.post(sx_path(), body)
    assert "widthz" not in obj["spec"]["ladder"] and obj["spec"]["ladder"]["widths"] == [32, 64]
    _, obj = http.apply(
        sx_path(name=name, sub="status"),
        _apply_status(name, sizes=[{"width": 8, "phase": "Training", "bogus": 1}]),
        "m",
    )
    assert obj["status"]["sizes"] == [{"width": 8, "phase": "Training"}]


def test_list_with_resource_versions(http):
    _, listed = http.get(sx_path())
    rv = int(listed["metadata"]["resourceVersion"])
    assert http.get(sx_path() + f"?resourceVersion={rv}")[0] == 200
    assert http.get(sx_path() + f"?resourceVersion={rv - 1}&resourceVersionMatch=NotOlderThan")[0] == 200
    http.post(sx_path(), sx_body(new_name()))
    assert http.get(sx_path() + f"?resourceVersion={rv}&resourceVersionMatch=Exact")[0] == 410
    assert http.get(sx_path() + f"?resourceVersion={rv + 10**6}")[0] == 504


def test_a_rejected_object_is_answered_422_on_every_write_until_forgotten(http):
    """Fault injection for what a real server's validation or an admission webhook refuses."""
    name = new_name()
    path = "/apis/jobset.x-k8s.io/v1alpha2/namespaces/default/jobsets"
    body = {"apiVersion": "jobset.x-k8s.io/v1alpha2", "kind": "JobSet", "metadata": {"name": name},
            "spec": {"replicatedJobs": []}}
    http.request("POST", "/debug/reject", {"resource": "jobsets", "name": name, "message": "bad label"})
    code, out = http.post(path, body)
    assert code == 422 and out["reason"] == "Invalid"
    assert out["message"] == f'JobSet.jobset.x-k8s.io "{name}" is invalid: bad label'
    assert http.apply(f"{path}/{name}", body, "m")[0] == 422
    assert http.post(path, {**body, "metadata": {"name": new_name()}})[0] == 201, "only that object"
    http.request("DELETE", "/debug/reject")
    assert http.post(path, body)[0] == 201
