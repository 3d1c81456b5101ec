"""Scenario harness: the real `ladder operator` process against the local API server (or a real
cluster when LADDER_TEST_KUBECONFIG is set), with the test playing the JobSet controller and
Kueue by writing what they would write.

Waiting is always polling the API for a condition with a deadline; a timeout fails with the
last state seen, never a fixed sleep standing in for an assertion.
"""

from __future__ import annotations

import copy
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import yaml

from ladder_api import artifacts, storage
from ladder_api.status import Result, result_id
from ladder_testing.apiserver.client import Http

REPO = Path(__file__).resolve().parents[2]
SX = "/apis/ladder.dev/v1alpha1"
JS = "/apis/jobset.x-k8s.io/v1alpha2"
WL = "/apis/kueue.x-k8s.io/v1beta1"
DEADLINE_S = float(os.environ.get("LADDER_TEST_DEADLINE_S", "30"))


class WaitTimeoutError(AssertionError):
    pass


def wait_for(what: str, fn: Callable[[], object], timeout: float = DEADLINE_S, interval: float = 0.05):
    """Poll `fn` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except (KeyError, TypeError, IndexError) as err:
            last = err
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise WaitTimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what}; last: {str(last)[:2000]}"
            )
        time.sleep(interval)


def load_example(name: str, namespace: str, exp_name: str | None = None) -> dict:
    doc = yaml.safe_load((REPO / "examples" / name).read_text())
    doc["metadata"]["namespace"] = namespace
    if exp_name:
        doc["metadata"]["name"] = exp_name
    return doc


def tiny(namespace: str, exp_name: str | None = None) -> dict:
    """The pinned test experiment (tests/operator/tiny.yaml): widths 32, 64, 96, two at once."""
    doc = yaml.safe_load((Path(__file__).parent / "tiny.yaml").read_text())
    doc["metadata"]["namespace"] = namespace
    if exp_name:
        doc["metadata"]["name"] = exp_name
    return doc


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log_path: Path, extra: list[str] | None = None,
                 env: dict[str, str] | None = None):
        self.kubeconfig, self.log_path, self.extra = kubeconfig, log_path, extra or []
        # One identity per OperatorProcess, kept across its restarts: the same pod whose container
        # restarts takes its leader Lease back at once; another OperatorProcess is another pod.
        self.env = {"POD_NAME": f"operator-{uuid.uuid4().hex[:6]}", **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def identity(self) -> str:
        return self.env["POD_NAME"]

    def start(self) -> OperatorProcess:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1", **self.env}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ladder_cli.main", "operator", *self.extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
        log.close()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


PLACEHOLDER_BUCKETS = ("gs://ladder-test/", "gs://ladder-experiments/")  # tiny.yaml's, the examples'


class Cluster:
    """Reads and writes over HTTP, plus the parts of JobSet and Kueue the test plays, and the
    evaluators' writes (results to the experiment's storage, progress to its status) done by the
    evaluator's own store. With `storage` (a gs:// bucket of the GCS emulator), experiments
    created here write under `output_uri`, its folder for this namespace, instead of where the
    examples point (no outputUri, or a placeholder bucket): tests sharing a bucket never see
    each other's results."""

    def __init__(self, url: str, namespace: str, *, kubeconfig: Path | None = None,
                 storage: str | None = None):
        self.http = Http(url)
        self.ns = namespace
        self.kubeconfig = kubeconfig
        self.storage = storage

    @property
    def output_uri(self) -> str | None:
        return f"{storage.join(self.storage, self.ns)}/" if self.storage else None

    # --- setup ---------------------------------------------------------------------------------

    def create_namespace(self) -> None:
        code, body = self.http.post("/api/v1/namespaces", {"metadata": {"name": self.ns}})
        assert code in (201, 409), body

    def create(self, exp: dict) -> dict:
        out = (exp.get("spec") or {}).get("storage", {}).get("outputUri")
        if self.storage and (out is None or out.startswith(("./", *PLACEHOLDER_BUCKETS))):
            exp = with_changes(exp, **{"storage.outputUri": self.output_uri})
        code, body = self.http.post(f"{SX}/namespaces/{self.ns}/scalingexperiments", exp)
        assert code == 201, body
        return body

    def edit(self, name: str, attempts: int = 20, **changes) -> dict:
        """Change the spec the way `kubectl edit` does: read, change, PUT with the resourceVersion
        read, and start again on 409 (the operator may have written the object in between)."""
        for _ in range(attempts):
            live = self.experiment(name)
            code, body = self.http.put(
                f"{SX}/namespaces/{self.ns}/scalingexperiments/{name}", with_changes(live, **changes)
            )
            if code != 409:
                assert code == 200, body
                return body
        raise AssertionError(f"{attempts} conflicting writes in a row while editing {name}")

    # --- reads ---------------------------------------------------------------------------------

    def experiment(self, name: str) -> dict:
        code, body = self.http.get(f"{SX}/namespaces/{self.ns}/scalingexperiments/{name}")
        return body if code == 200 else {}

    def status(self, name: str) -> dict:
        return self.experiment(name).get("status") or {}

    def sizes(self, name: str) -> dict[int, dict]:
        return {s["width"]: s for s in self.status(name).get("sizes") or []}

    def phases(self, name: str) -> dict[int, str]:
        return {w: s.get("phase") for w, s in self.sizes(name).items()}

    def condition(self, name: str, ctype: str) -> dict:
        return next((c for c in self.status(name).get("conditions") or [] if c["type"] == ctype), {})

    def jobsets(self, exp: str | None = None) -> dict[str, dict]:
        q = f"?labelSelector=ladder.dev/experiment={exp}" if exp else ""
        _, body = self.http.get(f"{JS}/namespaces/{self.ns}/jobsets{q}")
        return {j["metadata"]["name"]: j for j in body["items"]}

    def objects(self, path: str) -> list[dict]:
        _, body = self.http.get(path.format(ns=self.ns))
        return body["items"]

    def events(self, reason: str | None = None) -> list[dict]:
        items = self.objects("/api/v1/namespaces/{ns}/events")
        return [e for e in items if reason is None or e["reason"] == reason]

    # --- the JobSet controller -----------------------------------------------------------------

    def set_jobset(self, name: str, state: str, restarts: int = 0, reason: str = "", message: str = ""):
        conds = []
        if state == "completed":
            conds = [
                {
                    "type": "Completed",
                    "status": "True",
                    "reason": "AllJobsCompleted",
                    "message": "jobset completed successfully",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ]
        elif state == "failed":
            conds = [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": reason or "FailedJobs",
                    "message": message or "jobset failed",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ]
        status = {"restarts": restarts, "conditions": conds, "replicatedJobsStatus": []}
        if state in ("completed", "failed"):
            status["terminalState"] = "Completed" if state == "completed" else "Failed"
        code, body = self.http.merge(f"{JS}/namespaces/{self.ns}/jobsets/{name}/status", {"status": status})
        assert code == 200, body

    # --- Kueue ---------------------------------------------------------------------------------

    def kueue_admit(self, admit: set[str] | None = None) -> None:
        """What Kueue does: a Workload per JobSet (pending, JobSet suspended), then admission
        (JobSet unsuspended) for the JobSets named in `admit`; deactivated Workloads are evicted."""
        workloads = {w["metadata"]["name"]: w for w in self.objects(WL + "/namespaces/{ns}/workloads")}
        for name, js in self.jobsets().items():
            wl_name = f"jobset-{name}"
            wl = workloads.get(wl_name)
            if wl is None:
                self.http.merge(f"{JS}/namespaces/{self.ns}/jobsets/{name}", {"spec": {"suspend": True}})
                code, wl = self.http.post(
                    f"{WL}/namespaces/{self.ns}/workloads",
                    {
                        "apiVersion": "kueue.x-k8s.io/v1beta1",
                        "kind": "Workload",
                        "metadata": {
                            "name": wl_name,
                            "ownerReferences": [
                                {
                                    "apiVersion": "jobset.x-k8s.io/v1alpha2",
                                    "kind": "JobSet",
                                    "name": name,
                                    "uid": js["metadata"]["uid"],
                                    "controller": True,
                                }
                            ],
                        },
                        "spec": {"queueName": "ladder", "active": True, "podSets": pod_sets(js)},
                    },
                )
                assert code == 201, wl
            active = (wl.get("spec") or {}).get("active", True)
            admitted = bool((wl.get("status") or {}).get("admission"))
            if not active and admitted:
                self.http.merge(
                    f"{WL}/namespaces/{self.ns}/workloads/{wl_name}/status",
                    {
                        "status": {
                            "admission": None,
                            "conditions": [kueue_condition("Evicted", "InactiveWorkload")],
                        }
                    },
                )
                self.http.merge(f"{JS}/namespaces/{self.ns}/jobsets/{name}", {"spec": {"suspend": True}})
            elif active and not admitted and admit is not None and name in admit:
                self.http.merge(
                    f"{WL}/namespaces/{self.ns}/workloads/{wl_name}/status",
                    {
                        "status": {
                            "admission": {
                                "clusterQueue": "tpu",
                                "podSetAssignments": [{"name": p["name"]} for p in pod_sets(js)],
                            },
                            "conditions": [kueue_condition("Admitted", "Admitted")],
                        }
                    },
                )
                self.http.merge(f"{JS}/namespaces/{self.ns}/jobsets/{name}", {"spec": {"suspend": False}})

    # --- pods ----------------------------------------------------------------------------------

    def trainer_reports(self, exp: str, width: int, step: int, total: int) -> None:
        body = {
            "apiVersion": "ladder.dev/v1alpha1",
            "kind": "ScalingExperiment",
            "metadata": {"name": exp},
            "status": {
                "sizes": [
                    {
                        "width": width,
                        "step": step,
                        "totalSteps": total,
                        "loss": 0.1,
                        "checkpointStep": step,
                        "checkpointUri": f"gs://b/{exp}/c{width}/{step}",
                    }
                ]
            },
        }
        code, out = self.http.apply(
            f"{SX}/namespaces/{self.ns}/scalingexperiments/{exp}/status", body, f"ladder-trainer-c{width}"
        )
        assert code == 200, out

    def results_prefix(self, exp: str, width: int) -> str:
        spec = self.experiment(exp)["spec"]
        return artifacts.size_paths(storage.join(spec["storage"]["outputUri"], exp), width).results

    def evaluator_writes(self, exp: str, width: int, results: list[dict], worker: int = 0) -> None:
        """What evaluation worker `worker`'s pod does after a grid point: its results to storage,
        then its progress report into the status (ladder_evaluator.status_store, a process of its
        own)."""
        from ladder_evaluator.status_store import ClusterStore, manager_base
        from ladder_kube.client import Client
        from ladder_kube.credentials import load_credentials
        from ladder_kube.status import StatusWriter

        client = Client(load_credentials(str(self.kubeconfig)), user_agent="ladder-evaluator/test")
        writer = StatusWriter(client, self.ns, exp, manager_base(width, worker))
        store = ClusterStore(artifacts.ResultsStore(self.results_prefix(exp, width)), writer, width,
                             report_every_s=0.0)
        store.existing()
        store.write([Result.model_validate(r) for r in results])
        store.flush()
        client.close()

    def summary_of_record(self, exp: str) -> dict:
        """The summary the status should show: ladder_api.frontier.summarize_for over every result
        of record in storage (the spec's FID, views and guidance scales; the sizes not done
        predicted), with the progress of the phases."""
        from ladder_api.frontier import summarize_for
        from ladder_api.grid import ranking_fid
        from ladder_api.plan import expand
        from ladder_api.predict import unfinished_sizes
        from ladder_api.spec import ScalingExperiment

        obj = self.experiment(exp)
        keys = ("apiVersion", "kind", "metadata", "spec")
        spec = ScalingExperiment.model_validate({k: obj[k] for k in keys})
        sizes = self.status(exp).get("sizes") or []
        done = {s["width"] for s in sizes if s.get("phase") == "Succeeded"}
        ev = spec.spec.evaluation
        wire = summarize_for(self.recorded(exp), len(done), len(sizes), ev, ranking_fid(ev),
                             unfinished=unfinished_sizes(expand(spec).runs, done)).to_wire()
        wire.pop("measured", None)
        return wire

    def recorded(self, exp: str) -> list[Result]:
        """Every result of record of the experiment, from its storage."""
        widths = [s["width"] for s in self.status(exp).get("sizes") or []]
        return [r for w in widths for r in artifacts.read_results(self.results_prefix(exp, w))]


class InProcess:
    """The API server, the operator's Controller in this process fed by hand (what the watches
    would deliver), and the pods' writers (trainer reports, evaluator stores). `bucket`: a gs://
    bucket of the GCS emulator (the operator accepts outputs on gs:// only)."""

    def __init__(self, api, bucket: str):
        from ladder_kube.aio import AsyncClient
        from ladder_kube.client import Client
        from ladder_kube.credentials import load_credentials
        from ladder_operator.controller import Controller

        self.api = api
        self.cluster = Cluster(api.url, unique_ns(), kubeconfig=api.kubeconfig, storage=bucket)
        self.cluster.create_namespace()
        self.kube = AsyncClient(Client(load_credentials(str(api.kubeconfig)), user_agent="ladder-operator/t"))
        self.controller = Controller(self.kube, namespaces=[self.cluster.ns], kueue_version=None)
        self._evaluations = itertools.count(int(time.time()))

    def client(self):
        from ladder_kube.client import Client
        from ladder_kube.credentials import load_credentials

        return Client(load_credentials(str(self.api.kubeconfig)), user_agent="pod/t")

    async def deliver(self) -> None:
        """What the watches bring: every experiment and JobSet of the namespace, then the reconciles."""
        ns = self.cluster.ns
        for obj in self.cluster.objects(SX + "/namespaces/{ns}/scalingexperiments"):
            self.controller.on_experiment("MODIFIED", obj)
        for obj in self.cluster.objects(JS + "/namespaces/{ns}/jobsets"):
            obj["metadata"].setdefault("namespace", ns)
            self.controller.on_jobset("MODIFIED", obj)
        await self.controller.idle()

    def evaluator(self, name: str, width: int, *, every_s: float = 0.0, incarnation: str | None = None):
        """One evaluator process's store (ladder_evaluator.status_store)."""
        from ladder_evaluator.status_store import ClusterStore, manager_base
        from ladder_kube.status import StatusWriter

        writer = StatusWriter(self.client(), self.cluster.ns, name, manager_base(width),
                              incarnation=incarnation)
        return ClusterStore(artifacts.ResultsStore(self.cluster.results_prefix(name, width)), writer, width,
                            report_every_s=every_s)

    def evaluate(self, name: str, width: int, results: list[dict]) -> None:
        """One evaluator process that writes `results`; each call a process started later than
        the one before (a second apart, as the status writers order them)."""
        from ladder_kube.ownership import new_incarnation

        store = self.evaluator(name, width, incarnation=new_incarnation(now=next(self._evaluations)))
        store.existing()
        store.write([Result.model_validate(r) for r in results])
        store.flush()



def pod_sets(jobset: dict) -> list[dict]:
    """A Workload's podSets as Kueue derives them from a JobSet: one per replicated Job."""
    out = []
    for rjob in jobset["spec"]["replicatedJobs"]:
        job = rjob["template"]["spec"]
        count = int(rjob.get("replicas", 1)) * int(job.get("parallelism", 1))
        out.append({"name": rjob["name"], "count": count, "template": job["template"]})
    return out


def kueue_condition(ctype: str, reason: str) -> dict:
    """A metav1.Condition as Kueue writes it (every required field set)."""
    return {
        "type": ctype,
        "status": "True",
        "reason": reason,
        "message": reason,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def results_for(
    width: int,
    step: int,
    fid_base: float,
    *,
    samplers=("ddim",),
    steps=(4, 8),
    guidance=(1.0, 2.0),
    metric="fid-digits-classifier",
) -> list[dict]:
    out = []
    cost = width / 320
    for sampler in samplers:
        for n in steps:
            for g in guidance:
                out.append(
                    {
                        "id": result_id(width, step, sampler, n, g, metric),
                        "width": width,
                        "checkpointStep": step,
                        "sampler": sampler,
                        "steps": n,
                        "guidance": g,
                        "metric": metric,
                        "value": round(fid_base / n + g, 4),
                        "numSamples": 500,
                        "gflopsPerForward": cost,
                        "samplingCost": cost * n,
                        "samplingCostWithGuidance": cost * n * (2 if g != 1.0 else 1),
                    }
                )
    return out


def unique_ns(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def with_changes(exp: dict, **paths) -> dict:
    """Copy of `exp` with dotted spec paths set, e.g. with_changes(e, **{"training.steps": 5})."""
    out = copy.deepcopy(exp)
    for path, value in paths.items():
        cur = out["spec"]
        parts = path.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value
    return out
