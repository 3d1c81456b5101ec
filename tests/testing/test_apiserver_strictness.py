"""The local API server refuses what kube-apiserver refuses, with its status codes and wording:
schema violations of custom resources (422 with the field path), unknown fields under strict field
validation (400), names and labels (422), NaN and Infinity (400), bodies over 3 MiB (413), objects
over etcd's 1.5 MiB (etcd's error), annotations over 256 KiB (422), strategic merge patches on
custom resources (415); and it serves what kubectl needs: dry runs that store nothing, Tables with
printer columns, field selectors on Events, OpenAPI v2 and v3.
"""

from __future__ import annotations

import json
import uuid

import pytest

from ladder_testing.apiserver.client import Http

SX = "/apis/ladder.dev/v1alpha1/namespaces/default/scalingexperiments"
CM = "/api/v1/namespaces/default/configmaps"
EVENTS = "/api/v1/namespaces/default/events"
JS = "/apis/jobset.x-k8s.io/v1alpha2/namespaces/default/jobsets"
TABLE = (  # what kubectl get sends
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)


@pytest.fixture(scope="module")
def http(apiserver):
    return Http(apiserver.url)


def new_name(prefix="s"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sx(name, **spec):
    return {
        "apiVersion": "ladder.dev/v1alpha1",
        "kind": "ScalingExperiment",
        "metadata": {"name": name},
        "spec": {"ladder": {"widths": [32, 64]}, **spec},
    }


def created(http, body=None):
    body = body or sx(new_name())
    code, obj = http.post(SX, body)
    assert code == 201, obj
    return obj


def causes(body) -> dict[str, str]:
    return {c["field"]: c["message"] for c in body["details"]["causes"]}


# --- custom resources against their schema ------------------------------------------------------


def test_schema_violations_are_422_naming_the_field(http):
    code, body = http.post(SX, sx(new_name(), training={"steps": "abc", "learningRate": -1}))
    assert (code, body["reason"]) == (422, "Invalid")
    assert causes(body) == {
        "spec.training.steps": (
            'Invalid value: "string": spec.training.steps in body must be of type integer: "string"'
        ),
        "spec.training.learningRate": (
            "Invalid value: -1: spec.training.learningRate in body should be greater than 0"
        ),
    }
    obj = created(http)
    name = obj["metadata"]["name"]
    code, body = http.merge(f"{SX}/{name}", {"spec": {"training": {"steps": "abc"}}})
    assert code == 422 and "spec.training.steps" in causes(body)
    code, body = http.apply(f"{SX}/{name}", sx(name, training={"computeDtype": "float16"}), "m")
    assert code == 422
    assert causes(body)["spec.training.computeDtype"].startswith(
        'Unsupported value: "float16": supported values:'
    )
    point = {"summary": {"frontier": [{"budget": 1.0, "sampler": "ddim"}]}}
    code, body = http.merge(f"{SX}/{name}/status", {"status": point})
    assert code == 422 and "status.summary.frontier[0].width" in causes(body)
    assert causes(body)["status.summary.frontier[0].width"] == "Required value"
    code, live = http.get(f"{SX}/{name}")
    assert live["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"], "nothing was written"


def test_list_map_keys_are_unique(http):
    name = created(http)["metadata"]["name"]
    sizes = [{"width": 32, "phase": "Training"}, {"width": 32, "phase": "Failed"}]
    code, body = http.merge(f"{SX}/{name}/status", {"status": {"sizes": sizes}})
    assert code == 422 and causes(body) == {"status.sizes[1]": 'Duplicate value: {"width":32}'}


def test_unknown_fields_strict_is_400_warn_drops_them_with_a_warning(http):
    body = sx(new_name())
    body["spec"]["ladder"]["widthz"] = [1]
    code, err = http.post(SX + "?fieldValidation=Strict", body)
    assert (code, err["reason"]) == (400, "BadRequest")
    assert err["message"].endswith('strict decoding error: unknown field "spec.ladder.widthz"')
    code, obj = http.post(SX, body)  # the default is Warn
    assert code == 201 and "widthz" not in obj["spec"]["ladder"]
    assert http.headers["warning"] == ['299 - "unknown field \\"spec.ladder.widthz\\""']
    cm = {"metadata": {"name": new_name()}, "data": {"a": "1"}, "dta": {}}
    code, err = http.post(CM + "?fieldValidation=Strict", cm)
    assert code == 400 and 'unknown field "dta"' in err["message"]


def test_built_in_kinds_refuse_what_their_go_types_cannot_decode(http):
    code, body = http.post(CM, {"metadata": {"name": new_name()}, "data": {"a": 1}})
    assert (code, body["reason"]) == (400, "BadRequest")
    assert body["message"].startswith(
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal'
    )


def test_crd_defaults_are_applied_and_self_equals_old_self_is_enforced(http):
    name = new_name("js")
    jobset = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": name},
        "spec": {
            "replicatedJobs": [
                {
                    "name": "w",
                    "template": {
                        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}
                    },
                }
            ]
        },
    }
    jobset["spec"]["successPolicy"] = {"operator": "All"}
    code, obj = http.post(JS, jobset)
    assert code == 201, obj
    assert obj["spec"]["replicatedJobs"][0]["replicas"] == 1, "defaulted from the CRD schema"
    code, body = http.merge(f"{JS}/{name}", {"spec": {"successPolicy": {"operator": "Any"}}})
    assert code == 422 and causes(body) == {
        "spec.successPolicy": 'Invalid value: "object": Value is immutable'
    }
    assert http.merge(f"{JS}/{name}", {"spec": {"suspend": True}})[0] == 200


# --- strictness of every write ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "detail"),
    [
        (SX, "Bad_Name", "a lowercase RFC 1123 subdomain must consist of"),
        (CM, "x" * 254, "must be no more than 253 characters"),
        ("/api/v1/namespaces", "has.dot", "a lowercase RFC 1123 label must consist of"),
    ],
)
def test_names_follow_the_rule_of_their_kind(http, path, name, detail):
    body = sx(name) if path == SX else {"metadata": {"name": name}}
    code, err = http.post(path, body)
    assert (code, err["reason"]) == (422, "Invalid")
    assert detail in causes(err)["metadata.name"]


def test_labels_and_annotations_are_validated(http):
    for labels, detail in [
        ({"bad key!": "v"}, "name part must consist of"),
        ({"ok": "bad value!"}, "a valid label must be an empty string or consist of"),
        ({"ok": "v" * 64}, "must be no more than 63 characters"),
        ({"a/b/c": "v"}, "a qualified name must consist of"),
    ]:
        code, err = http.post(CM, {"metadata": {"name": new_name(), "labels": labels}})
        assert code == 422 and detail in causes(err)["metadata.labels"], err
    name = created(http)["metadata"]["name"]
    code, err = http.merge(f"{SX}/{name}", {"metadata": {"annotations": {"big": "x" * (256 * 1024)}}})
    assert code == 422 and causes(err) == {
        "metadata.annotations": "Too long: may not be more than 262144 bytes"
    }


def test_nan_and_infinity_are_not_json(http):
    name = created(http)["metadata"]["name"]
    for raw in (
        b'{"spec": {"training": {"learningRate": NaN}}}',
        b'{"spec": {"training": {"learningRate": 1e999}}}',
    ):
        code, err = http.request("PATCH", f"{SX}/{name}", raw, "application/merge-patch+json")
        assert (code, err["reason"]) == (400, "BadRequest"), err
    applied = (
        b"apiVersion: ladder.dev/v1alpha1\nkind: ScalingExperiment\nmetadata: {name: %s}\n"
        b"spec: {training: {learningRate: .inf}}\n"
    )
    code, err = http.request(
        "PATCH", f"{SX}/{name}?fieldManager=m", applied % name.encode(), "application/apply-patch+yaml"
    )
    assert code == 400, err
    code, err = http.request("POST", CM, b'{"metadata": {"name": "nan"}, "data": {"a": Infinity}}')
    assert code == 400


def test_size_limits(http):
    code, err = http.post(CM, {"metadata": {"name": new_name()}, "data": {"a": "x" * (3 * 1024 * 1024)}})
    assert (code, err["reason"], err["message"]) == (
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 3145728",
    )
    code, err = http.post(CM, {"metadata": {"name": new_name()}, "data": {"a": "x" * (1600 * 1024)}})
    assert (code, err["message"]) == (500, "etcdserver: request is too large")
    code, _ = http.post(CM, {"metadata": {"name": new_name()}, "data": {"a": "x" * (1400 * 1024)}})
    assert code == 201
    # etcd stores managedFields too: 800 kB of data in 3,200 keys is 1.6 MB with its field set.
    many = {"metadata": {"name": new_name()}, "data": {f"{i:05d}" + "k" * 245: "v" for i in range(3200)}}
    assert len(json.dumps(many)) < 1024 * 1024
    code, err = http.post(CM + "?fieldManager=writer", many)
    assert (code, err["message"]) == (500, "etcdserver: request is too large")
    assert http.post(CM + "?fieldManager=writer&dryRun=All", many)[0] == 201, "a dry run never reaches etcd"


def test_strategic_merge_patch_is_refused_on_custom_resources_and_merges_by_key_on_built_ins(http):
    name = created(http)["metadata"]["name"]
    code, err = http.request(
        "PATCH", f"{SX}/{name}", {"spec": {"suspend": True}}, "application/strategic-merge-patch+json"
    )
    assert (code, err["reason"]) == (415, "UnsupportedMediaType")
    assert "application/strategic-merge-patch+json" not in err["message"].split("include: ")[1]
    pod = new_name("pod")
    containers = [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]
    assert (
        http.post(
            "/api/v1/namespaces/default/pods", {"metadata": {"name": pod}, "spec": {"containers": containers}}
        )[0]
        == 201
    )
    patch = {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}
    code, obj = http.request(
        "PATCH", f"/api/v1/namespaces/default/pods/{pod}", patch, "application/strategic-merge-patch+json"
    )
    assert code == 200 and obj["spec"]["containers"] == [
        {"name": "a", "image": "a:1"},
        {"name": "b", "image": "b:2"},
    ]


# --- dry runs -----------------------------------------------------------------------------------


def test_dry_run_validates_and_answers_without_storing(http):
    name = new_name()
    code, obj = http.post(SX + "?dryRun=All", sx(name))
    assert code == 201 and obj["metadata"]["uid"] and "resourceVersion" not in obj["metadata"]
    assert http.get(f"{SX}/{name}")[0] == 404
    assert http.post(SX + "?dryRun=All", sx(name, training={"steps": "x"}))[0] == 422
    live = created(http, sx(name))
    rv = live["metadata"]["resourceVersion"]
    assert http.post(SX + "?dryRun=All", sx(name))[0] == 409
    code, obj = http.merge(f"{SX}/{name}?dryRun=All", {"spec": {"suspend": True}})
    assert code == 200 and obj["spec"]["suspend"] is True and obj["metadata"]["generation"] == 2
    code, obj = http.apply(f"{SX}/{name}?dryRun=All", sx(name, suspend=True), "dry")
    assert code == 200 and "dry" in {m["manager"] for m in obj["metadata"]["managedFields"]}
    code, obj = http.put(f"{SX}/{name}?dryRun=All", {**live, "spec": {"ladder": {"widths": [8]}}})
    assert code == 200 and obj["spec"]["ladder"]["widths"] == [8]
    assert http.delete(f"{SX}/{name}?dryRun=All")[0] == 200
    assert http.delete(f"{SX}/{name}", {"dryRun": ["All"]})[0] == 200  # DeleteOptions, as kubectl sends it
    _, after = http.get(f"{SX}/{name}")
    assert after["metadata"]["resourceVersion"] == rv and "suspend" not in after["spec"]
    assert "dry" not in {m["manager"] for m in after["metadata"].get("managedFields") or []}
    assert http.post(SX + "?dryRun=Some", sx(new_name()))[0] == 400


# --- reads kubectl depends on -------------------------------------------------------------------


def test_tables_carry_the_crd_printer_columns(http):
    name = created(http)["metadata"]["name"]
    status = {"phase": "Running", "summary": {"progress": "1/2", "bestFid": 12.5, "measured": "10/20"}}
    assert http.merge(f"{SX}/{name}/status", {"status": status})[0] == 200
    code, table = http.request("GET", f"{SX}/{name}", accept=TABLE)
    assert (code, table["kind"], table["apiVersion"]) == (200, "Table", "meta.k8s.io/v1")
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == ["Name", "Phase", "Sizes", "Best FID", "Measured", "Age"]
    (row,) = table["rows"]
    assert row["cells"][:5] == [name, "Running", "1/2", 12.5, "10/20"]
    assert row["cells"][5].endswith("s") and row["object"]["kind"] == "PartialObjectMetadata"
    _, listed = http.request("GET", f"{SX}?includeObject=None", accept=TABLE)
    assert name in [r["cells"][0] for r in listed["rows"]] and "object" not in listed["rows"][0]
    _, cms = http.request("GET", CM, accept=TABLE)
    assert [c["name"] for c in cms["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert http.get(f"{SX}/{name}")[1]["kind"] == "ScalingExperiment", (
        "plain JSON unless a Table is asked for"
    )


def test_events_are_selected_by_involved_object(http):
    obj = created(http)
    name, uid = obj["metadata"]["name"], obj["metadata"]["uid"]
    for i, (who, whose) in enumerate([(name, uid), (name, "other-uid"), ("someone-else", uid)]):
        event = {
            "metadata": {"name": f"{name}.{i}"},
            "involvedObject": {
                "kind": "ScalingExperiment",
                "name": who,
                "namespace": "default",
                "uid": whose,
            },
            "reason": "Test",
            "message": str(i),
        }
        assert http.post(EVENTS, event)[0] == 201
    selector = (  # what kubectl describe sends
        f"involvedObject.name={name},involvedObject.namespace=default,"
        f"involvedObject.kind=ScalingExperiment,involvedObject.uid={uid}"
    )
    _, listed = http.get(f"{EVENTS}?fieldSelector={selector}")
    assert [e["message"] for e in listed["items"]] == ["0"]
    code, err = http.get(f"{EVENTS}?fieldSelector=involvedObject.colour=red")
    assert (code, err["message"]) == (400, "field label not supported: involvedObject.colour")
    assert http.get(f"{SX}?fieldSelector=spec.suspend=true")[0] == 400


def test_openapi_v3_publishes_each_kind_with_its_patch_parameters(http):
    _, discovery = http.get("/openapi/v3")
    url = discovery["paths"]["apis/ladder.dev/v1alpha1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/ladder.dev/v1alpha1?hash=")
    _, doc = http.get(url)
    schema = doc["components"]["schemas"]["dev.ladder.v1alpha1.ScalingExperiment"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "ladder.dev", "kind": "ScalingExperiment", "version": "v1alpha1"}
    ]
    assert schema["properties"]["spec"]["properties"]["training"]["properties"]["steps"]["type"] == "integer"
    patch = doc["paths"]["/apis/ladder.dev/v1alpha1/namespaces/{namespace}/scalingexperiments/{name}"][
        "patch"
    ]
    assert {"dryRun", "fieldManager", "fieldValidation", "force"} <= {p["name"] for p in patch["parameters"]}
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    _, core = http.get(discovery["paths"]["api/v1"]["serverRelativeURL"])
    pod_spec = core["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]
    assert pod_spec["properties"]["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert http.get(url.split("?")[0] + "?hash=stale")[0] == 200, (
        "a stale hash is redirected to the current one"
    )


def test_openapi_v2_is_served_as_json_and_as_protobuf(http):
    code, raw = http.raw("GET", "/openapi/v2", accept="application/json")
    doc = json.loads(raw)
    assert code == 200 and doc["swagger"] == "2.0"
    assert "dev.ladder.v1alpha1.ScalingExperiment" in doc["definitions"]
    code, pb = http.raw(
        "GET", "/openapi/v2", accept="application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    )
    assert code == 200 and http.headers["content-type"] == [
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    ]
    assert pb[:5] == b"\x0a\x032.0", "field 1 (swagger) first"  # the rest is read by kubectl explain
    assert b"dev.ladder.v1alpha1.ScalingExperiment" in pb


def test_clients_may_reset_managed_fields(http):
    name = created(http)["metadata"]["name"]
    http.apply(f"{SX}/{name}", sx(name, suspend=True), "a")
    code, obj = http.merge(f"{SX}/{name}", {"metadata": {"managedFields": [{}]}})
    assert code == 200 and "managedFields" not in obj["metadata"]


# --- start-up -----------------------------------------------------------------------------------


def test_missing_upstream_crds_stop_the_server_naming_where_it_looked(monkeypatch, tmp_path):
    """No stand-in CRDs: a server more lenient than a real one would hide the defects it is for."""
    from ladder_testing.apiserver import registry
    from ladder_testing.apiserver.store import Store

    monkeypatch.setenv("LADDER_SHARED_DIR", str(tmp_path))
    assert registry.schema_dirs()[0] == tmp_path / "schemas"
    monkeypatch.setattr(registry, "schema_dirs", lambda: [tmp_path / "schemas"])
    with pytest.raises(
        FileNotFoundError, match=r"jobset\.x-k8s\.io_jobsets\.yaml: looked in .*LADDER_SHARED_DIR"
    ):
        Store()


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(5, "5s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600 + 60, "3h1m"), (9 * 3600, "9h"),
     (50 * 3600, "2d2h"), (30 * 86400, "30d"), (3 * 365 * 86400, "3y")],
)  # fmt: skip
def test_ages_read_as_kubectl_prints_them(seconds, shown):
    from ladder_testing.apiserver.tables import human_duration

    assert human_duration(seconds) == shown


def test_openapi_operation_ids_are_unique_and_name_the_status_subresource():
    """As kube-apiserver's: readNamespacedPod for the object, readNamespacedPodStatus for its status,
    listPodForAllNamespaces across namespaces (a document with one id twice is not valid OpenAPI)."""
    from ladder_testing.apiserver import openapi, registry

    doc = openapi.v2_document(registry.builtin_resources())
    ops = [op for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)]
    ids = [op["operationId"] for op in ops]
    assert len(ids) == len(set(ids))
    status = doc["paths"]["/api/v1/namespaces/{name}/status"]
    assert [status[v]["operationId"] for v in ("get", "put", "patch")] == [
        "readCoreV1NamespaceStatus", "replaceCoreV1NamespaceStatus", "patchCoreV1NamespaceStatus"]
    assert doc["paths"]["/api/v1/pods"]["get"]["operationId"] == "listCoreV1PodForAllNamespaces"
