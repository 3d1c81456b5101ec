"""render(plan): every object valid against the real schemas, shaped like xpk's TPU JobSets."""

from __future__ import annotations

import re

import pytest

from ladder_api.exitcodes import RESTARTABLE
from ladder_api.grid import worker_of_pod
from ladder_api.loading import load_experiment, parse_experiment
from ladder_api.plan import Plan, RunConfig, expand
from ladder_api.tpu import SLICES
from ladder_operator import labels, names
from ladder_operator.render import (
    dump_yaml,
    evaluation_jobset,
    prepare_jobset,
    render,
    render_shared,
    render_size,
    training_jobset,
)
from tests.conftest import EXAMPLES, validate_manifest

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
UID = "7d3f0c1e-5a3b-4a8e-9b61-0c2d9f6e1a42"


def plan_of(name: str = "exp", uid: str | None = UID, **spec) -> Plan:
    meta = {"name": name, "namespace": "research"}
    if uid:
        meta["uid"] = uid
    return expand(parse_experiment({"metadata": meta, "spec": spec}))


def example_plan(file: str, uid: str | None = UID) -> Plan:
    exp = load_experiment(EXAMPLES / file)
    exp.metadata.uid = uid
    return expand(exp)


def by_kind(manifests: list[dict], kind: str) -> list[dict]:
    return [m for m in manifests if m["kind"] == kind]


def pod_spec(jobset: dict) -> dict:
    return jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("file", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_renders_valid_objects(file):
    manifests = render(example_plan(file))
    for m in manifests:
        validate_manifest(m)
    kinds = [m["kind"] for m in manifests]
    runs = len(example_plan(file).runs)
    assert kinds.count("JobSet") == 2 * runs and kinds.count("ConfigMap") == 1


def test_order_and_split_functions_agree():
    plan = plan_of(ladder={"widths": [64, 96]})
    everything = render(plan)
    assert [m["kind"] for m in everything[:4]] == ["ServiceAccount", "Role", "RoleBinding", "ConfigMap"]
    assert everything == render_shared(plan) + render_size(plan, 64) + render_size(plan, 96)
    assert render_size(plan, 96) == [training_jobset(plan, 96), evaluation_jobset(plan, 96)]
    with pytest.raises(KeyError):
        training_jobset(plan, 128)


def test_training_jobset_is_shaped_like_xpk():
    plan = plan_of(
        ladder={"widths": [64]},
        resources={"slices": [{"sliceType": "v5litepod-32"}]},
        scheduling={"queue": "tpu-queue", "priorityClass": "high", "maxRestarts": 7},
    )
    js = training_jobset(plan, 64)
    meta, spec = js["metadata"], js["spec"]
    assert js["apiVersion"] == "jobset.x-k8s.io/v1alpha2"
    assert meta["name"] == "exp-c64" == names.training_jobset("exp", 64)
    assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "tpu-queue"
    assert meta["labels"]["kueue.x-k8s.io/priority-class"] == "high"
    exclusive = meta["annotations"]["alpha.jobset.sigs.k8s.io/exclusive-topology"]
    assert exclusive == "cloud.google.com/gke-nodepool"
    assert spec["failurePolicy"]["maxRestarts"] == 7
    (rule,) = spec["failurePolicy"]["rules"]
    assert rule["action"] == "FailJobSet" and rule["onJobFailureReasons"] == ["PodFailurePolicy"]
    assert spec["network"]["enableDNSHostnames"] is True and spec["network"]["subdomain"] == "exp-c64"
    assert spec["ttlSecondsAfterFinished"] == 86_400
    (rjob,) = spec["replicatedJobs"]
    assert rjob["name"] == "slice" and rjob["replicas"] == 1
    job = rjob["template"]["spec"]
    assert job["parallelism"] == job["completions"] == 8 and job["completionMode"] == "Indexed"
    assert job["backoffLimit"] == 0
    (pfp,) = job["podFailurePolicy"]["rules"]
    assert pfp["action"] == "FailJob" and pfp["onExitCodes"]["operator"] == "NotIn"
    assert pfp["onExitCodes"]["values"] == [RESTARTABLE, *range(127, 256)]
    pod = pod_spec(js)
    assert pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
        "cloud.google.com/gke-tpu-topology": "4x8",
        "node.kubernetes.io/instance-type": "ct5lp-hightpu-4t",
    }
    assert {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    (c,) = pod["containers"]
    assert c["resources"]["limits"] == {"google.com/tpu": 4}
    assert "hostNetwork" not in pod
    assert {p["containerPort"] for p in c["ports"]} == {8471, 8080}
    assert c["command"] == ["python", "-m", "ladder_trainer", "--config", "/etc/ladder/run/exp-c64.json"]
    assert not any(e["name"].startswith("MEGASCALE") for e in c["env"])
    assert "coordinator" not in spec


@pytest.mark.parametrize("slice_name", [n for n, s in SLICES.items()])
def test_tpu_request_follows_the_slice_table(slice_name):
    plan = plan_of(ladder={"widths": [64]}, resources={"slices": [{"sliceType": slice_name}]})
    js = training_jobset(plan, 64)
    st = SLICES[slice_name]
    job = js["spec"]["replicatedJobs"][0]["template"]["spec"]
    assert job["parallelism"] == st.hosts
    assert pod_spec(js)["containers"][0]["resources"]["limits"]["google.com/tpu"] == st.chips_per_host
    assert pod_spec(js)["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == st.topology
    assert pod_spec(js)["nodeSelector"]["node.kubernetes.io/instance-type"] == st.machine_type


def test_single_host_and_multi_host_2x4_pools_never_mix():
    """Both pools carry accelerator tpu-v5-lite-podslice and topology 2x4; only the machine type
    (one 8-chip host vs two 4-chip hosts) tells their nodes apart."""
    plan = plan_of(ladder={"widths": [64]}, resources={
        "slices": [{"sliceType": "v5litepod-8"}], "evalSlice": {"sliceType": "v5litepod-8-1host"}})
    train, evaluate = pod_spec(training_jobset(plan, 64)), pod_spec(evaluation_jobset(plan, 64))
    tpu_labels = ("cloud.google.com/gke-tpu-accelerator", "cloud.google.com/gke-tpu-topology")
    assert [train["nodeSelector"][k] for k in tpu_labels] == [evaluate["nodeSelector"][k] for k in tpu_labels]
    assert train["nodeSelector"]["node.kubernetes.io/instance-type"] == "ct5lp-hightpu-4t"
    assert evaluate["nodeSelector"]["node.kubernetes.io/instance-type"] == "ct5lp-hightpu-8t"
    assert train["containers"][0]["resources"]["limits"] == {"google.com/tpu": 4}
    assert evaluate["containers"][0]["resources"]["limits"] == {"google.com/tpu": 8}


def test_pods_request_cpu_and_memory_of_their_machine_type_unless_overridden():
    plan = plan_of(ladder={"widths": [64, 768]}, resources={
        "slices": [{"sliceType": "v5litepod-16", "podResources": {"cpu": "50"}}],
        "overrides": {"768": {"sliceType": "v5p-32", "podResources": {"cpu": "150", "memory": "300Gi"}}},
        "evalSlice": {"sliceType": "v5litepod-1", "podResources": {"memory": "20Gi"}},
    })
    requests = {w: pod_spec(training_jobset(plan, w))["containers"][0]["resources"]["requests"]
                for w in (64, 768)}
    machine = SLICES["v5litepod-16"].machine
    assert requests[64] == {"cpu": "50", "memory": machine.pod_memory}
    assert requests[768] == {"cpu": "150", "memory": "300Gi"}
    evaluate = pod_spec(evaluation_jobset(plan, 64))["containers"][0]["resources"]["requests"]
    assert evaluate == {"cpu": SLICES["v5litepod-1"].machine.pod_cpu, "memory": "20Gi"}
    for m in render(plan):
        validate_manifest(m)


def test_trainer_and_evaluator_get_a_memory_backed_dev_shm():
    for js in by_kind(render(plan_of()), "JobSet"):
        pod = pod_spec(js)
        (c,) = pod["containers"]
        (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["emptyDir"]["medium"] == "Memory", js["metadata"]["name"]


def test_host_networking_is_an_opt_in_for_training_pods():
    plan = plan_of(ladder={"widths": [768]},
                   resources={"slices": [{"sliceType": "v5p-128", "numSlices": 2}], "hostNetwork": True})
    train = pod_spec(training_jobset(plan, 768))
    assert train["hostNetwork"] is True and train["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert "hostNetwork" not in pod_spec(evaluation_jobset(plan, 768))  # one host: no DCN traffic
    for m in render(plan):
        validate_manifest(m)


def test_multislice_gets_replicas_coordinator_and_megascale_env():
    plan = plan_of(ladder={"widths": [768]}, resources={"slices": [{"sliceType": "v5p-128", "numSlices": 4}]})
    js = training_jobset(plan, 768)
    assert js["spec"]["replicatedJobs"][0]["replicas"] == 4
    assert js["spec"]["coordinator"] == {"replicatedJob": "slice", "jobIndex": 0, "podIndex": 0}
    env = {e["name"]: e for e in pod_spec(js)["containers"][0]["env"]}
    assert env["MEGASCALE_NUM_SLICES"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['jobset.sigs.k8s.io/replicatedjob-replicas']"
    )
    assert env["MEGASCALE_SLICE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['jobset.sigs.k8s.io/job-index']"
    )
    assert env["MEGASCALE_COORDINATOR_ADDRESS"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['jobset.sigs.k8s.io/coordinator']"
    )
    validate_manifest(js)


def test_evaluation_jobset_runs_the_evaluator_on_one_host():
    plan = plan_of(ladder={"widths": [64]}, resources={"evalSlice": {"sliceType": "v5litepod-8-1host"}})
    js = evaluation_jobset(plan, 64)
    run = plan.run(64)
    assert js["metadata"]["name"] == names.evaluation_jobset("exp", 64) == "exp-c64-eval"
    assert js["metadata"]["labels"][labels.COMPONENT] == "evaluator"
    assert "alpha.jobset.sigs.k8s.io/exclusive-topology" not in js["metadata"]["annotations"]
    (rjob,) = js["spec"]["replicatedJobs"]
    assert rjob["replicas"] == 1 and rjob["template"]["spec"]["parallelism"] == 1
    (c,) = pod_spec(js)["containers"]
    assert c["command"] == [
        "python",
        "-m",
        "ladder_evaluator",
        "--config",
        "/etc/ladder/run/exp-c64.json",
        "--checkpoint",
        run.paths.checkpoints,
    ]
    assert c["resources"]["limits"]["google.com/tpu"] == 8
    assert c["image"] == plan.resources.images.evaluator


def test_config_map_holds_every_run_config_where_the_command_reads_it():
    plan = plan_of(ladder={"widths": [64, 96, 128]})
    cm = by_kind(render(plan), "ConfigMap")[0]
    assert cm["metadata"]["name"] == names.run_config_map("exp")
    assert sorted(cm["data"]) == ["exp-c128.json", "exp-c64.json", "exp-c96.json"]
    for run in plan.runs:
        assert RunConfig.model_validate_json(cm["data"][f"{run.name}.json"]) == run
        pod = pod_spec(training_jobset(plan, run.width))
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "run-config"]
        (vol,) = [v for v in pod["volumes"] if v["name"] == "run-config"]
        assert vol["configMap"]["name"] == cm["metadata"]["name"]
        config_arg = pod["containers"][0]["command"][-1]
        assert config_arg == f"{mount['mountPath']}/{run.name}.json"


def test_rbac_lets_pods_patch_only_this_experiments_status():
    manifests = render(plan_of())
    (sa,) = by_kind(manifests, "ServiceAccount")
    (role,) = by_kind(manifests, "Role")
    (binding,) = by_kind(manifests, "RoleBinding")
    for rule in role["rules"]:
        assert rule["resourceNames"] == ["exp"] and rule["apiGroups"] == ["ladder.dev"]
        assert "create" not in rule["verbs"] and "delete" not in rule["verbs"] and "*" not in rule["verbs"]
    status_rule = next(r for r in role["rules"] if r["resources"] == ["scalingexperiments/status"])
    assert set(status_rule["verbs"]) == {"get", "patch"}
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    subject = {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "research"}
    assert binding["subjects"] == [subject]
    for js in by_kind(manifests, "JobSet"):
        assert pod_spec(js)["serviceAccountName"] == sa["metadata"]["name"]


def test_every_experiment_has_its_own_service_account_mapped_to_its_google_account():
    """Issue 13 (security): pods of experiments sharing a ServiceAccount could patch each other's
    status. Each experiment's pods run as its own, bound only to its own status Role; Workload
    Identity maps it to the Google service account of the spec."""
    runs = "runs@p.iam.gserviceaccount.com"
    manifests = render(plan_of(resources={"gcpServiceAccount": runs}))
    (sa,) = by_kind(manifests, "ServiceAccount")
    assert sa["metadata"]["name"] == "exp-ladder-pods"
    assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": runs}
    (binding,) = by_kind(manifests, "RoleBinding")
    subject = {"kind": "ServiceAccount", "name": "exp-ladder-pods", "namespace": "research"}
    assert binding["subjects"] == [subject]
    for js in by_kind(manifests, "JobSet"):
        assert pod_spec(js)["serviceAccountName"] == "exp-ladder-pods"
    other = render(plan_of(name="other"))
    (other_sa,) = by_kind(other, "ServiceAccount")
    assert other_sa["metadata"]["name"] != sa["metadata"]["name"]
    assert "annotations" not in other_sa["metadata"]
    (other_role,) = by_kind(other, "Role")
    assert all(rule["resourceNames"] == ["other"] for rule in other_role["rules"])


def test_owner_references_need_the_uid():
    for m in render(plan_of()):
        (owner,) = m["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "ladder.dev/v1alpha1",
            "kind": "ScalingExperiment",
            "name": "exp",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert m["metadata"]["namespace"] == "research"
    for m in render(plan_of(uid=None)):
        assert "ownerReferences" not in m["metadata"]


def test_labels():
    for m in render(plan_of(ladder={"widths": [64]})):
        lab = m["metadata"]["labels"]
        for key in ("name", "instance", "component", "part-of", "managed-by"):
            assert f"app.kubernetes.io/{key}" in lab
        assert lab["ladder.dev/experiment"] == "exp"
        if m["kind"] == "JobSet":
            assert lab["ladder.dev/width"] == "64"
            assert (
                pod_spec(m)
                and m["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["metadata"]["labels"][
                    "ladder.dev/width"
                ]
                == "64"
            )


def test_pods_are_locked_down():
    for js in by_kind(render(plan_of()), "JobSet"):
        pod = pod_spec(js)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (c,) = pod["containers"]
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]} and "privileged" not in sc
        assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])


def test_suspend_reaches_the_jobsets():
    assert all(js["spec"]["suspend"] is True for js in by_kind(render(plan_of(suspend=True)), "JobSet"))
    assert all("suspend" not in js["spec"] for js in by_kind(render(plan_of()), "JobSet"))


def _longest_pod_hostname(js: dict) -> str:
    rjob = js["spec"]["replicatedJobs"][0]
    job = rjob["template"]["spec"]
    return f"{js['metadata']['name']}-{rjob['name']}-{rjob['replicas'] - 1}-{job['completions'] - 1}"


def test_names_stay_valid_for_the_longest_experiment_name():
    long_a = "a" * 30 + "-experiment"[:10]  # 40 characters
    long_b = "a" * 30 + "-different"  # 40 characters, same first 30
    assert len(long_a) == len(long_b) == 40
    seen = {}
    for name in (long_a, long_b):
        plan = plan_of(
            name=name,
            ladder={"widths": [64, 8192]},
            resources={"slices": [{"sliceType": "v5litepod-256", "numSlices": 16}]},
        )
        for m in render(plan):
            n = m["metadata"]["name"]
            assert len(n) <= 63 and DNS1123_LABEL.match(n), n
            seen.setdefault(n, set()).add(name)
            if m["kind"] == "JobSet":
                assert DNS1035_LABEL.match(n)
                pod_name = _longest_pod_hostname(m) + "-abcde"  # JobSet's webhook check
                assert len(pod_name) <= 63 and DNS1035_LABEL.match(pod_name), pod_name
                assert m["spec"]["network"]["subdomain"] == n
                validate_manifest(m)
            for v in m["metadata"]["labels"].values():
                assert len(v) <= 63
    assert all(len(owners) == 1 for owners in seen.values()), "two experiments share an object name"
    # the width suffix survives truncation, and names are a pure function of their inputs
    assert names.training_jobset(long_a, 8192).endswith("-c8192")
    assert names.training_jobset(long_a, 64) == names.training_jobset(long_a, 64)
    assert names.training_jobset(long_a, 64) != names.training_jobset(long_b, 64)


def test_yaml_is_byte_identical_across_independent_renders():
    manifests = render(example_plan("paper-v5e.yaml"))
    a = dump_yaml(manifests)
    b = dump_yaml(render(example_plan("paper-v5e.yaml")))
    assert a == b and a.startswith("---\n") and a.count("\n---\n") == len(manifests) - 1


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda js: pod_spec(js)["containers"][0]["ports"][0].update(containerPort="tpu"),
        lambda js: pod_spec(js)["containers"][0].update(imagePullPolcy="Always"),
        lambda js: js["spec"].update(replicatedJob=[]),
        lambda js: js["spec"]["failurePolicy"]["rules"][0].update(action="Explode"),
        lambda js: js["spec"]["replicatedJobs"][0]["template"]["spec"].update(backoffLimit="zero"),
    ],
)
def test_the_validators_would_catch_a_broken_jobset(corrupt):
    import jsonschema

    js = training_jobset(plan_of(), 64)
    corrupt(js)
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(js)


def test_the_validators_would_catch_a_broken_role():
    import jsonschema

    role = next(m for m in render(plan_of()) if m["kind"] == "Role")
    role["rules"][0]["verb"] = ["get"]
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(role)


def test_evaluation_workers_make_the_indexed_job_wider_and_stay_valid():
    """N workers: N pods of one Indexed Job (JOB_COMPLETION_INDEX picks a worker's share), each
    with the slice's chips; the manifest stays valid against the JobSet schema."""
    plan = plan_of(ladder={"widths": [64]}, resources={"evalSlice": {"sliceType": "v5litepod-8-1host"}},
                   evaluation={"workers": 3})
    js = evaluation_jobset(plan, 64)
    validate_manifest(js)
    (rjob,) = js["spec"]["replicatedJobs"]
    job = rjob["template"]["spec"]
    assert rjob["replicas"] == 1
    assert job["completionMode"] == "Indexed" and job["parallelism"] == job["completions"] == 3
    (c,) = pod_spec(js)["containers"]
    assert c["resources"]["limits"]["google.com/tpu"] == 8
    # what each pod's evaluator reads from the index the Job controller sets
    assert [worker_of_pod({"JOB_COMPLETION_INDEX": str(i)}) for i in range(3)] == [0, 1, 2]
    assert worker_of_pod({}) == 0
    one = evaluation_jobset(plan_of(ladder={"widths": [64]}), 64)
    assert one["spec"]["replicatedJobs"][0]["template"]["spec"]["completions"] == 1



PREPARE = {"webdataset": ["gs://raw/laion/{00000..00099}.tar"], "workers": 4,
           "sliceType": "v5litepod-8-1host", "image": "ghcr.io/ladder-dev/ladder-prepare:0.1.0",
           "batchSize": 64}


def test_prepare_jobset_runs_indexed_workers_of_ladder_prepare():
    plan = plan_of(ladder={"widths": [64, 96]}, data={"trainUri": "gs://d/latents/", "prepare": PREPARE})
    everything = render(plan)
    js = prepare_jobset(plan)
    assert everything == render_shared(plan) + [js] + render_size(plan, 64) + render_size(plan, 96)
    validate_manifest(js)
    meta = js["metadata"]
    assert meta["name"] == names.prepare_jobset("exp") == "exp-prepare"
    assert meta["labels"][labels.COMPONENT] == "prepare" and labels.WIDTH not in meta["labels"]
    assert meta["labels"]["kueue.x-k8s.io/queue-name"] == "ladder"
    assert meta["annotations"] == {labels.SPEC_HASH: plan.spec_hash}
    (rjob,) = js["spec"]["replicatedJobs"]
    job = rjob["template"]["spec"]
    assert rjob["replicas"] == 1 and "coordinator" not in js["spec"]
    assert (job["parallelism"], job["completions"], job["completionMode"]) == (4, 4, "Indexed")
    (c,) = pod_spec(js)["containers"]
    first = plan.runs[0]
    assert c["command"] == [
        "python", "-m", "ladder_cli", "prepare", "text-image", f"/etc/ladder/run/{first.name}.json",
        "--webdataset", "gs://raw/laion/{00000..00099}.tar", "--output", "gs://d/latents/",
        "--batch-size", "64", "--dtype", "float16", "--num-workers", "4", "--staging-dir", "/tmp",
    ]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["LADDER_PREPARE_WORKERS"] == "4" and "LADDER_RUN_CONFIG" not in env
    assert c["image"] == PREPARE["image"] and c["resources"]["limits"]["google.com/tpu"] == 8
    assert pod_spec(js)["nodeSelector"][labels.GKE_TPU_TOPOLOGY] == SLICES["v5litepod-8-1host"].topology
    # a user error (exit 2) fails the JobSet at once; a preemption restarts it
    rule = job["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and 2 not in rule["onExitCodes"]["values"]
    assert RESTARTABLE in rule["onExitCodes"]["values"]


def test_no_prepare_section_no_prepare_jobset_and_the_longest_name_fits():
    assert prepare_jobset(plan_of()) is None
    assert [m for m in render(plan_of()) if m["metadata"]["labels"][labels.COMPONENT] == "prepare"] == []
    long = "a" * 40
    js = prepare_jobset(plan_of(name=long, data={"prepare": {**PREPARE, "workers": 10_000}}))
    validate_manifest(js)
    pod_name = _longest_pod_hostname(js) + "-abcde"
    assert len(pod_name) <= 63 and DNS1035_LABEL.match(pod_name), pod_name
