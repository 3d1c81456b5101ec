"""Two `ladder operator` processes against the local API server (issue 13: a second replica by
mistake was guarded only by `replicas: 1`): one holds the Lease and acts, the other stands by and
takes over when the first dies, at once when it shut down cleanly; a leader that loses its Lease
stops acting and exits."""

from __future__ import annotations

import signal
import time
import urllib.request

import pytest

from ladder_testing.apiserver.fixture import free_port
from tests.operator.harness import OperatorProcess, tiny, wait_for

LEASE = "/apis/coordination.k8s.io/v1/namespaces/default/leases/ladder-operator"
DURATION_S = 3.0


def _metrics(port: int) -> dict[str, float] | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def _writes(m: dict[str, float]) -> float:
    return sum(v for k, v in m.items() if k.startswith("ladder_api_writes_total{"))


class Replica:
    def __init__(self, apiserver, tmp_path, name: str, ns: str, duration: float = DURATION_S):
        self.port = free_port()
        self.proc = OperatorProcess(apiserver.kubeconfig, tmp_path / f"{name}.log", [
            "--namespace", ns, "--metrics-port", str(self.port), "--lease-duration", str(duration)])

    def start(self) -> Replica:
        self.proc.start()
        wait_for(f"{self.proc.identity} serving", lambda: _metrics(self.port) is not None)
        return self

    def leading(self) -> bool:
        m = _metrics(self.port)
        return bool(m and m.get("ladder_operator_leader") == 1.0)

    def writes(self) -> float:
        return _writes(_metrics(self.port) or {})


@pytest.fixture
def replicas(apiserver, cluster, tmp_path):
    made: list[Replica] = []

    def make(name: str, **kw) -> Replica:
        made.append(Replica(apiserver, tmp_path, name, cluster.ns, **kw))
        return made[-1]

    yield make
    for r in made:
        r.proc.kill()
    cluster.http.delete(LEASE)  # the next test starts with no leader


def test_one_replica_acts_the_other_stands_by_and_takes_over_when_it_dies(replicas, cluster):
    a = replicas("a").start()
    wait_for("a leads", a.leading)
    b = replicas("b").start()
    cluster.create(tiny(cluster.ns, "first"))
    wait_for("first started", lambda: len(cluster.jobsets("first")) == 2)
    assert not b.leading() and b.writes() == 0, "the standby writes nothing"
    assert a.writes() > 0
    assert "standing by: Lease default/ladder-operator is held by " + a.proc.identity in b.proc.log()
    lease = cluster.http.get(LEASE)[1]["spec"]
    assert lease["holderIdentity"] == a.proc.identity and lease["leaseDurationSeconds"] == 3

    a.proc.kill(signal.SIGKILL)  # no release: b must wait for the Lease to expire
    killed = time.monotonic()
    wait_for("b leads", b.leading, timeout=30)
    took = time.monotonic() - killed
    cluster.create(tiny(cluster.ns, "second"))
    wait_for("b serves", lambda: len(cluster.jobsets("second")) == 2)
    lease = cluster.http.get(LEASE)[1]["spec"]
    assert lease["holderIdentity"] == b.proc.identity and lease["leaseTransitions"] == 1
    # Within the Lease's duration and a few renewal periods (generous: this machine is shared).
    assert took < 3 * DURATION_S + 5, took


def test_a_clean_shutdown_hands_over_at_once(replicas, cluster):
    a = replicas("a", duration=60.0).start()
    wait_for("a leads", a.leading)
    b = replicas("b", duration=60.0).start()
    a.proc.stop()  # SIGTERM: a releases the Lease
    assert a.proc.proc.returncode == 0, a.proc.log()
    wait_for("b leads well before a 60 s Lease could expire", b.leading, timeout=20)


def test_a_leader_that_loses_its_lease_stops_acting_and_exits(replicas, cluster):
    a = replicas("a").start()
    wait_for("a leads", a.leading)
    code, lease = cluster.http.get(LEASE)
    assert code == 200
    taken = {**lease, "spec": {**lease["spec"], "holderIdentity": "someone-else",
                               "leaseDurationSeconds": 3600}}
    assert cluster.http.put(LEASE, taken)[0] == 200
    wait_for("a exits", lambda: a.proc.proc.poll() is not None, timeout=30)
    assert a.proc.proc.returncode == 1
    assert "lost Lease default/ladder-operator: someone-else holds it now" in a.proc.log()
