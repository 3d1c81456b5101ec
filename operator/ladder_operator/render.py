"""render(plan) -> the Kubernetes objects of one experiment. Pure: no client, no clock, no randomness.

Per experiment: its own ServiceAccount, which every pod of the experiment runs as, a Role and
RoleBinding that let that ServiceAccount read the experiment and patch only its /status, and one
ConfigMap holding every run's RunConfig JSON, mounted at /etc/ladder/run. The ServiceAccount is
never shared: pods of experiments sharing one could patch each other's status. For GCS it carries
the Workload Identity annotation (resources.gcpServiceAccount, else the chart's default); the IAM
binding that lets a namespace's ServiceAccounts act as that Google account is in the chart README.

Per size, two JobSets (jobset.x-k8s.io/v1alpha2), shaped the way xpk shapes TPU workloads:

- a TRAINING JobSet: one replicatedJob `slice` with one Job per TPU slice (replicas = slices),
  one pod per host (parallelism = completions = hosts, Indexed), `google.com/tpu` = chips per
  host, node selectors on accelerator and topology, one slice per node pool
  (exclusive-topology), Kueue queue and priority labels. Job backoffLimit 0 plus a
  podFailurePolicy that fails the Job for exit codes outside [42, 127..255]; the JobSet's
  failurePolicy turns such a failure into FailJobSet, while preemption-type exits (SIGTERM ->
  checkpoint -> 42, SIGKILL) restart the whole JobSet up to maxRestarts.
- an EVALUATION JobSet: one single-host pod on resources.evalSlice running the evaluator on the
  run's checkpoints. The operator creates it once the training JobSet has succeeded. With
  evaluation.workers = N its Indexed Job has N completions; pod JOB_COMPLETION_INDEX i is
  worker i and scores that worker's share of the grid points (ladder_api.grid.
  worker_share), so the Job completes, and the size is evaluated, once every share is recorded. A
  restarted JobSet reruns every worker, and each skips the results its share already has.

Every TPU pod selects its nodes by accelerator, topology AND machine type
(node.kubernetes.io/instance-type): the single-host 8-chip v5e pool (ct5lp-hightpu-8t) and a
multi-host 2x4 pool (ct5lp-hightpu-4t) share both TPU labels, and without the machine type a pod
of one kind could land on the other's nodes (Kueue flavours tell them apart by the same label).
Pods request the CPU and memory their node leaves allocatable (slice's podResources to override;
ladder_api.tpu has the table), so they are not BestEffort on the TPU VMs, and mount a 2 GiB
memory-backed /dev/shm (data loaders exchange batches through it).

Why evaluation is its own JobSet rather than a dependent replicatedJob (JobSet's dependsOn) in
the training JobSet: Kueue admits a JobSet as one Workload with a PodSet per replicatedJob, so a
dependent eval job would keep the whole training slice's quota reserved while it waits and
while it runs on one host; as a separate object, the training JobSet finishes and frees its
(large) quota, and evaluation queues for a small single-host slice of its own. It can also be
re-run (new checkpoints, a wider grid, --force) without touching training, and a failed
evaluation never counts against training's restart budget.

`ladder render` prints all of these; evaluation JobSets in that output are for inspection and
for a manual second step, since applying them before training finished gives the evaluator no
checkpoint to score.

Security: pods run as non-root (uid 1000) with a read-only root filesystem, no privilege
escalation, all capabilities dropped and the RuntimeDefault seccomp profile; writable scratch is
an emptyDir at /tmp (HOME and caches point there). TPU access needs no privileged container on
GKE 1.28+ (the TPU device plugin hands /dev/vfio devices to containers that request
google.com/tpu); on older GKE versions TPU pods needed `privileged: true`, which this renderer
deliberately does not emit. resources.hostNetwork (off by default) puts training pods on their
node's network for full DCN bandwidth between slices in multislice runs, as xpk does; it needs a
namespace whose Pod Security admission allows host networking (baseline and restricted do not).
`hack/tpu-smoke.sh` checks on a real slice what this relies on (docs/tpu.md).
"""

from __future__ import annotations

import yaml

from ladder_api import API_VERSION, KIND
from ladder_api.exitcodes import RESTARTABLE, SIGNAL_RANGE
from ladder_api.plan import Plan, RunConfig
from ladder_api.spec import SliceRequest
from ladder_api.tpu import SliceType, slice_type
from ladder_kube.resources import EXPERIMENT, JOBSET
from ladder_operator import labels as lb
from ladder_operator import names

JOBSET_API_VERSION = JOBSET.api_version
RUN_UID = 1000
TPU_RUNTIME_PORT = 8471
METRICS_PORT = 8080  # also the megascale coordinator port
SHM_SIZE = "2Gi"

RESTARTABLE_EXIT_CODES: list[int] = [RESTARTABLE, *range(SIGNAL_RANGE[0], SIGNAL_RANGE[1] + 1)]


# --- shared objects ---------------------------------------------------------------------------


def _meta(plan: Plan, name: str, component: str, width: int | None = None) -> dict:
    meta = {
        "name": name,
        "namespace": plan.experiment.namespace,
        "labels": lb.common(plan.experiment.name, component, width),
    }
    owner = owner_reference(plan)
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return meta


def owner_reference(plan: Plan) -> dict | None:
    """The experiment as controller owner, or None when its uid is unknown (`ladder render` of a
    file; the operator renders with the uid from the live object)."""
    if not plan.experiment.uid:
        return None
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": plan.experiment.name,
        "uid": plan.experiment.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_service_account(plan: Plan) -> str:
    return names.service_account(plan.experiment.name)


def service_account(plan: Plan) -> dict:
    """The experiment's own identity: in Kubernetes, its status Role; in GCP, the Google service
    account Workload Identity maps it to."""
    meta = _meta(plan, pod_service_account(plan), lb.Component.rbac)
    if plan.resources.gcp_service_account:
        meta["annotations"] = {lb.WORKLOAD_IDENTITY: plan.resources.gcp_service_account}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def status_role(plan: Plan) -> dict:
    """Read this experiment, patch (server-side apply) its status; nothing else, nothing wider."""
    exp = plan.experiment.name
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(plan, names.status_role(exp), lb.Component.rbac),
        "rules": [
            {
                "apiGroups": [EXPERIMENT.group],
                "resources": [EXPERIMENT.plural],
                "resourceNames": [exp],
                "verbs": ["get"],
            },
            {
                "apiGroups": [EXPERIMENT.group],
                "resources": [f"{EXPERIMENT.plural}/status"],
                "resourceNames": [exp],
                "verbs": ["get", "patch"],
            },
        ],
    }


def status_role_binding(plan: Plan) -> dict:
    exp = plan.experiment.name
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(plan, names.status_role(exp), lb.Component.rbac),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.status_role(exp)},
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": pod_service_account(plan),
                "namespace": plan.experiment.namespace,
            }
        ],
    }


def run_config_map(plan: Plan) -> dict:
    """Every run's RunConfig, canonical JSON, keyed <run-name>.json: the pods' whole input."""
    meta = _meta(plan, names.run_config_map(plan.experiment.name), lb.Component.run_config)
    meta["annotations"] = {lb.SPEC_HASH: plan.spec_hash}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {names.run_config_key(r.name): r.config_json() for r in plan.runs},
    }


def render_shared(plan: Plan) -> list[dict]:
    """The per-experiment objects: ServiceAccount, Role, RoleBinding, ConfigMap."""
    return [service_account(plan), status_role(plan), status_role_binding(plan), run_config_map(plan)]


# --- JobSets ----------------------------------------------------------------------------------


def _security_context() -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod_security_context() -> dict:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_UID,
        "runAsGroup": RUN_UID,
        "fsGroup": RUN_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _base_env(run: RunConfig) -> list[dict]:
    return [
        {"name": "LADDER_RUN_CONFIG", "value": names.run_config_path(run.name)},
        {"name": "HOME", "value": "/tmp"},
        {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
        {"name": "MPLCONFIGDIR", "value": "/tmp/.matplotlib"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]


def _multislice_env() -> list[dict]:
    """MEGASCALE_* from the labels and annotation JobSet puts on each pod (xpk's approach), so the
    template stays identical across slices."""

    def from_label(name: str, key: str, kind: str = "labels") -> dict:
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.{kind}['{key}']"}}}

    return [
        from_label("MEGASCALE_NUM_SLICES", lb.JOBSET_REPLICAS),
        from_label("MEGASCALE_SLICE_ID", lb.JOBSET_JOB_INDEX),
        from_label("MEGASCALE_COORDINATOR_ADDRESS", lb.JOBSET_COORDINATOR, "annotations"),
    ]


def scratch_volumes() -> tuple[list[dict], list[dict]]:
    """Writable /tmp (the root filesystem is read-only) and a memory-backed /dev/shm: the
    container runtime's default /dev/shm is 64 MiB, too small for data loaders that pass batches
    through it."""
    volumes = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}},
    ]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "dshm", "mountPath": "/dev/shm"}]
    return volumes, mounts


def _volumes(plan: Plan) -> tuple[list[dict], list[dict]]:
    """The run config, then the scratch volumes."""
    volumes, mounts = scratch_volumes()
    config = {"name": "run-config",
              "configMap": {"name": names.run_config_map(plan.experiment.name), "defaultMode": 0o444}}
    mount = {"name": "run-config", "mountPath": names.RUN_CONFIG_DIR, "readOnly": True}
    return [config, *volumes], [mount, *mounts]


def _requests(request: SliceRequest, st: SliceType) -> dict:
    own = request.pod_resources
    return {"cpu": own.cpu or st.machine.pod_cpu, "memory": own.memory or st.machine.pod_memory}


def tpu_pod_spec(
    request: SliceRequest, container: dict, volumes: list[dict], mounts: list[dict], *,
    host_network: bool = False,
) -> dict:
    """The pod of one host of a TPU slice, locked down: what training, evaluation and the smoke
    test (hack/tpu-smoke.sh) share, so the smoke test checks exactly what the JobSets run."""
    st = slice_type(request.slice_type)
    container = {
        **container,
        "ports": [
            {"containerPort": TPU_RUNTIME_PORT, "name": "tpu-runtime"},
            {"containerPort": METRICS_PORT, "name": "http"},
        ],
        "resources": {"requests": _requests(request, st), "limits": {lb.TPU_RESOURCE: st.chips_per_host}},
        "securityContext": _security_context(),
        "volumeMounts": mounts,
    }
    spec = {
        "restartPolicy": "Never",
        "nodeSelector": {
            lb.GKE_TPU_ACCELERATOR: st.accelerator,
            lb.GKE_TPU_TOPOLOGY: st.topology,
            lb.INSTANCE_TYPE: st.machine_type,
        },
        "tolerations": [{"key": lb.TPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "securityContext": _pod_security_context(),
        "containers": [container],
        "volumes": volumes,
    }
    if host_network:  # cluster DNS must still resolve the JobSet's pod hostnames
        spec.update({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"})
    return spec


def _pod_spec(
    plan: Plan, request: SliceRequest, container: dict, *, host_network: bool = False
) -> dict:
    volumes, mounts = _volumes(plan)
    container = {**container, "imagePullPolicy": plan.resources.images.pull_policy}
    spec = tpu_pod_spec(request, container, volumes, mounts, host_network=host_network)
    spec["serviceAccountName"] = pod_service_account(plan)
    spec["terminationGracePeriodSeconds"] = plan.resources.termination_grace_period_seconds
    return spec


def _job_template(
    pod_labels: dict, pod_spec: dict, hosts: int, container_name: str
) -> dict:
    return {
        "spec": {
            "parallelism": hosts,
            "completions": hosts,
            "completionMode": "Indexed",
            "backoffLimit": 0,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": container_name,
                            "operator": "NotIn",
                            "values": RESTARTABLE_EXIT_CODES,
                        },
                    }
                ]
            },
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        }
    }


def _jobset(
    plan: Plan,
    run: RunConfig | None,
    name: str,
    component: str,
    replicated_job: str,
    replicas: int,
    job_template: dict,
    *,
    exclusive: bool,
) -> dict:
    """A JobSet of one size (`run`), or of the whole experiment (run None: the preparation)."""
    meta = _meta(plan, name, component, run.width if run else None)
    meta["labels"][lb.KUEUE_QUEUE] = plan.scheduling.queue
    if plan.scheduling.priority_class:
        meta["labels"][lb.KUEUE_PRIORITY] = plan.scheduling.priority_class
    meta["annotations"] = {lb.SPEC_HASH: plan.spec_hash}
    if run is not None:
        meta["annotations"][lb.RECIPE_HASH] = run.recipe_hash
    if exclusive:
        meta["annotations"][lb.EXCLUSIVE_TOPOLOGY] = lb.NODEPOOL_TOPOLOGY_KEY
    spec: dict = {
        "ttlSecondsAfterFinished": plan.scheduling.ttl_seconds_after_finished,
        "failurePolicy": {
            "maxRestarts": plan.scheduling.max_restarts,
            "rules": [
                {
                    "name": "failOnNonRestartableExit",
                    "action": "FailJobSet",
                    "onJobFailureReasons": ["PodFailurePolicy"],
                }
            ],
        },
        "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True, "subdomain": name},
        "replicatedJobs": [{"name": replicated_job, "replicas": replicas, "template": job_template}],
    }
    if replicas > 1:
        spec["coordinator"] = {"replicatedJob": replicated_job, "jobIndex": 0, "podIndex": 0}
    if plan.suspend:
        spec["suspend"] = True
    return {"apiVersion": JOBSET_API_VERSION, "kind": "JobSet", "metadata": meta, "spec": spec}


def training_jobset(plan: Plan, width: int) -> dict:
    run = plan.run(width)
    st = slice_type(run.slice.slice_type)
    slices = run.slice.num_slices
    env = _base_env(run) + (_multislice_env() if slices > 1 else [])
    container = {
        "name": names.TRAIN_CONTAINER,
        "image": plan.resources.images.trainer,
        "command": ["python", "-m", "ladder_trainer", "--config", names.run_config_path(run.name)],
        "env": env,
    }
    pod_labels = lb.common(plan.experiment.name, lb.Component.trainer, width)
    pod_spec = _pod_spec(plan, run.slice, container, host_network=plan.resources.host_network)
    template = _job_template(pod_labels, pod_spec, st.hosts, names.TRAIN_CONTAINER)
    return _jobset(
        plan,
        run,
        names.training_jobset(plan.experiment.name, width),
        lb.Component.trainer,
        names.TRAIN_REPLICATED_JOB,
        slices,
        template,
        exclusive=True,
    )


def evaluation_jobset(plan: Plan, width: int) -> dict:
    run = plan.run(width)
    container = {
        "name": names.EVAL_CONTAINER,
        "image": plan.resources.images.evaluator,
        "command": [
            "python", "-m", "ladder_evaluator",
            "--config", names.run_config_path(run.name),
            "--checkpoint", run.paths.checkpoints,
        ],
        "env": _base_env(run),
    }
    workers = run.evaluation.workers  # one pod each; JOB_COMPLETION_INDEX says which
    pod_labels = lb.common(plan.experiment.name, lb.Component.evaluator, width)
    pod_spec = _pod_spec(plan, run.eval_slice, container)
    template = _job_template(pod_labels, pod_spec, workers, names.EVAL_CONTAINER)
    return _jobset(
        plan,
        run,
        names.evaluation_jobset(plan.experiment.name, width),
        lb.Component.evaluator,
        names.EVAL_REPLICATED_JOB,
        run.eval_slice.num_slices,
        template,
        exclusive=False,
    )


def prepare_jobset(plan: Plan) -> dict | None:
    """The data preparation (spec.data.prepare), or None without one: `ladder prepare
    text-image` as one Indexed Job of `workers` single-host pods. Each pod reads its index from
    JOB_COMPLETION_INDEX and takes parts k with k % workers == index, committing each part whole;
    the last to finish writes the manifest. A restart (preemption, a JobSet restart, a new pod for
    a failed index) redoes only uncommitted parts, so the data has no duplicate or missing
    examples. It reads the first run's RunConfig: every run shares spec.data and the ladder's
    latent and context shapes, which are all a preparation needs."""
    first = plan.runs[0]
    prep = first.data.prepare
    if prep is None:
        return None
    request = SliceRequest(slice_type=prep.slice_type)
    command = prep.command(names.run_config_path(first.name), first.data.train_uri)
    command += ["--num-workers", str(prep.workers), "--staging-dir", "/tmp"]
    env = [e for e in _base_env(first) if e["name"] != "LADDER_RUN_CONFIG"]
    env.append({"name": "LADDER_PREPARE_WORKERS", "value": str(prep.workers)})
    container = {
        "name": names.PREPARE_CONTAINER,
        "image": prep.image or plan.resources.images.trainer,
        "command": command,
        "env": env,
    }
    pod_labels = lb.common(plan.experiment.name, lb.Component.prepare)
    pod_spec = _pod_spec(plan, request, container)
    template = _job_template(pod_labels, pod_spec, prep.workers, names.PREPARE_CONTAINER)
    return _jobset(
        plan, None, names.prepare_jobset(plan.experiment.name), lb.Component.prepare,
        names.PREPARE_REPLICATED_JOB, 1, template, exclusive=False,
    )


def render_size(plan: Plan, width: int) -> list[dict]:
    """The two JobSets of one size: training, then evaluation."""
    return [training_jobset(plan, width), evaluation_jobset(plan, width)]


def render(plan: Plan) -> list[dict]:
    """Every object of the experiment in a stable order: shared objects, the preparation JobSet
    when spec.data.prepare asks for one, then per size (in the plan's start order) the training
    and the evaluation JobSet."""
    out = render_shared(plan)
    prepare = prepare_jobset(plan)
    out += [prepare] if prepare else []
    for run in plan.runs:
        out.extend(render_size(plan, run.width))
    return out


class _Dumper(yaml.SafeDumper):
    """Block style, except lists of plain numbers (the exit-code list) on one line."""


def _represent_list(dumper: yaml.SafeDumper, data: list):
    flow = bool(data) and all(isinstance(x, int) and not isinstance(x, bool) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_yaml(manifests: list[dict]) -> str:
    """Multi-document YAML with sorted keys: byte-identical for the same manifests."""
    return yaml.dump_all(
        manifests, Dumper=_Dumper, sort_keys=True, default_flow_style=False, explicit_start=True, width=100
    )
