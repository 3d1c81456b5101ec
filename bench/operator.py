"""Benchmark of the operator against the local API server (both real processes).

    .venv/bin/python bench/operator.py [--experiments 200] [--idle-s 60] [--json out.json]

Measures, with the server counting requests by client (User-Agent) and verb:
1. API requests of one experiment's whole life (quickstart: 3 sizes, 2 at once), driven to
   Succeeded by this script playing Kueue, JobSet and the pods;
2. requests per minute while nothing changes (the target is no writes at all), and apart from
   them the leader's Lease renewals (a GET and a PATCH every leaseDuration / 7.5, 2 s);
3. create-to-all-JobSets latency over N experiments created at once (p50/p99), timed from the
   POST's answer to the ADDED event of the experiment's last JobSet on a watch;
4. the operator's peak RSS (VmHWM) holding them, and its mean reconcile time (its own metric).

The experiments' storage is a bucket of the GCS emulator (ladder_testing.gcs), as the operator
takes only gs:// outputs and reads the evaluators' results there; its storage requests are not
counted above (they are the emulator's, not the API server's).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ladder_testing.apiserver.fixture import free_port  # noqa: E402
from ladder_testing.gcs import running_gcs  # noqa: E402
from tests.operator.harness import Cluster, load_example, results_for, tiny, wait_for  # noqa: E402

OPERATOR_CLIENTS = ("kopf", "ladder-operator")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
LEASE = "leases"  # leader election renews its Lease: counted apart from the work (lease_counts)


def requests_by(url: str, reset: bool = False) -> list[dict]:
    req = urllib.request.Request(url + "/debug/requests", method="DELETE" if reset else "GET")
    with urllib.request.urlopen(req) as rsp:
        return json.loads(rsp.read())


def operator_counts(url: str, leases: bool = False) -> dict[str, dict[str, int]]:
    """The operator's requests by verb and resource: its work, or (`leases`) its Lease renewals."""
    out: dict[str, dict[str, int]] = {}
    for row in requests_by(url):
        if row["client"] in OPERATOR_CLIENTS and (row["resource"] == LEASE) == leases:
            out.setdefault(row["verb"], {})
            out[row["verb"]][row["resource"]] = out[row["verb"]].get(row["resource"], 0) + row["count"]
    return out


def total(counts: dict[str, dict[str, int]], verbs=None) -> int:
    return sum(n for v, per in counts.items() if verbs is None or v in verbs for n in per.values())


def wait_quiet(url: str, quiet_s: float = 2.0, timeout: float = 60) -> None:
    """Until the operator has made no request for `quiet_s` (its reconciles are done)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = total(operator_counts(url))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.2)


def drive(cluster: Cluster, name: str) -> bool:
    cluster.kueue_admit(admit=set(cluster.jobsets()))
    for js_name, js in cluster.jobsets().items():
        if js.get("status", {}).get("terminalState"):
            continue
        width = int(js["metadata"]["labels"]["ladder.dev/width"])
        if js_name.endswith("-eval"):
            cluster.evaluator_writes(name, width, results_for(width, 600, 6400.0 / width))
        else:
            cluster.trainer_reports(name, width, 300, 600)
            cluster.trainer_reports(name, width, 600, 600)
        cluster.set_jobset(js_name, "completed")
    return cluster.status(name).get("phase") == "Succeeded"


def watch_jobsets(url: str, namespace: str, seen: dict[str, float], stop: threading.Event) -> None:
    path = f"{url}/apis/jobset.x-k8s.io/v1alpha2/namespaces/{namespace}/jobsets?watch=1&timeoutSeconds=600"
    with urllib.request.urlopen(path, timeout=620) as rsp:
        for line in rsp:
            if stop.is_set():
                return
            ev = json.loads(line)
            if ev["type"] == "ADDED":
                seen.setdefault(ev["object"]["metadata"]["name"], time.monotonic())


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reconcile_mean_ms(metrics_url: str) -> tuple[float, int]:
    text = urllib.request.urlopen(metrics_url).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("ladder_reconcile_duration_seconds_sum") or line.startswith(
            "ladder_reconcile_duration_seconds_count"
        ):
            k, v = line.split()
            values[k] = float(v)
    count = values.get("ladder_reconcile_duration_seconds_count", 0)
    mean = values.get("ladder_reconcile_duration_seconds_sum", 0) / count * 1000 if count else float("nan")
    return mean, int(count)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))
    return values[k]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    stack = contextlib.ExitStack()
    bucket = stack.enter_context(running_gcs()).bucket("ladder-bench")  # the operator inherits it
    work = Path(tempfile.mkdtemp(prefix="ladder-bench-"))
    port, mport = free_port(), free_port()
    kubeconfig = work / "kubeconfig"
    py = sys.executable
    server = subprocess.Popen(
        [py, "-m", "ladder_testing.apiserver", "--port", str(port), "--kubeconfig", str(kubeconfig)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for("the API server", lambda: _ok(url), timeout=30)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    op_log = open(work / "operator.log", "wb")  # noqa: SIM115
    op = subprocess.Popen(
        [py, "-m", "ladder_cli.main", "operator", "--metrics-port", str(mport)],
        cwd=REPO,
        env=env,
        stdout=op_log,
        stderr=subprocess.STDOUT,
    )
    report: dict = {"cpu_count": os.cpu_count()}
    try:
        wait_for("the operator", lambda: operator_counts(url).get("watch"), timeout=60)
        wait_quiet(url, 1.0)

        # 1. One lifecycle.
        life = Cluster(url, "bench-life", kubeconfig=kubeconfig, storage=bucket)
        life.create_namespace()
        requests_by(url, reset=True)
        exp = load_example("quickstart.yaml", life.ns)
        life.create(exp)
        t0 = time.monotonic()
        life_name = exp["metadata"]["name"]
        wait_for("Succeeded", lambda: drive(life, life_name), timeout=120, interval=0.2)
        report["lifecycle_s"] = round(time.monotonic() - t0, 2)
        wait_quiet(url)
        counts = operator_counts(url)
        report["lifecycle_requests"] = counts
        report["lifecycle_writes"] = total(counts, WRITE_VERBS)
        report["lifecycle_objects_created"] = sum(
            n for r, n in counts.get("create", {}).items() if r != "events"
        )
        report["lifecycle_events"] = counts.get("create", {}).get("events", 0)
        report["lifecycle_status_writes"] = counts.get("patch", {}).get("scalingexperiments/status", 0)
        report["lifecycle_transitions"] = len(life.events())

        # 2. Idle.
        requests_by(url, reset=True)
        time.sleep(args.idle_s)
        idle = operator_counts(url)
        report["idle_s"] = args.idle_s
        report["idle_requests_per_min"] = round(total(idle) / args.idle_s * 60, 2)
        report["idle_writes_per_min"] = round(total(idle, WRITE_VERBS) / args.idle_s * 60, 2)
        renewals = total(operator_counts(url, leases=True))
        report["idle_lease_requests_per_min"] = round(renewals / args.idle_s * 60, 2)

        # 3. N experiments at once.
        many = Cluster(url, "bench-many", kubeconfig=kubeconfig, storage=bucket)
        many.create_namespace()
        seen: dict[str, float] = {}
        stop = threading.Event()
        watcher = threading.Thread(target=watch_jobsets, args=(url, many.ns, seen, stop), daemon=True)
        watcher.start()
        time.sleep(0.5)  # the watch is registered (it lists nothing yet)
        requests_by(url, reset=True)
        created: dict[str, float] = {}
        base = tiny(many.ns)
        t_start = time.monotonic()
        for i in range(args.experiments):
            exp = json.loads(json.dumps(base))
            exp["metadata"]["name"] = f"exp-{i:03d}"
            many.create(exp)
            created[exp["metadata"]["name"]] = time.monotonic()
        report["create_all_s"] = round(time.monotonic() - t_start, 2)

        def all_jobsets():
            return all(f"{n}-c32" in seen and f"{n}-c64" in seen for n in created)

        wait_for("all JobSets", all_jobsets, timeout=600, interval=0.2)
        latencies = [max(seen[f"{n}-c32"], seen[f"{n}-c64"]) - t for n, t in created.items()]
        report["experiments"] = args.experiments
        report["create_to_jobsets_p50_s"] = round(percentile(latencies, 50), 3)
        report["create_to_jobsets_p99_s"] = round(percentile(latencies, 99), 3)
        report["all_jobsets_after_first_create_s"] = round(max(seen.values()) - min(created.values()), 2)
        wait_quiet(url)
        many_counts = operator_counts(url)
        report["many_requests_per_experiment"] = round(total(many_counts) / args.experiments, 2)
        report["many_writes_per_experiment"] = round(total(many_counts, WRITE_VERBS) / args.experiments, 2)
        stop.set()
        report["operator_peak_rss_mib"] = round(vm_hwm_mib(op.pid), 1)
        mean, count = reconcile_mean_ms(f"http://127.0.0.1:{mport}/metrics")
        report["reconcile_mean_ms"] = round(mean, 2)
        report["reconciles"] = count
    finally:
        for proc in (op, server):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        stack.close()
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as rsp:
            return rsp.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
