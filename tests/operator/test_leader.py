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


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_lease_rules_on_each_processs_own_clock(apiserver):
    """ladder_operator.leader without waiting: a standby takes a held Lease only once it went
    unrenewed for its duration on the standby's clock; a released one at once; a write that
    races another fails instead of overwriting it."""
    import asyncio

    from ladder_kube.aio import AsyncClient
    from ladder_kube.client import Client
    from ladder_kube.credentials import load_credentials
    from ladder_kube.errors import ApiError
    from ladder_operator.leader import Elector, LeaseConfig

    async def scenario():
        kube = AsyncClient(Client(load_credentials(str(apiserver.kubeconfig)), user_agent="test"))
        ca, cb = Clock(), Clock()
        a = Elector(kube, LeaseConfig("default", "a", name="rules", duration_s=10), clock=ca)
        b = Elector(kube, LeaseConfig("default", "b", name="rules", duration_s=10), clock=cb)
        try:
            assert await a.try_acquire_or_renew()
            assert not await b.try_acquire_or_renew()  # b first sees it at its t=0
            cb.now = 9.9
            assert not await b.try_acquire_or_renew(), "not expired on b's clock"
            ca.now = 5.0
            assert await a.try_acquire_or_renew(), "a renews"
            cb.now = 10.5
            assert not await b.try_acquire_or_renew(), "renewed: b counts from when it saw the change"
            cb.now = 20.6
            assert await b.try_acquire_or_renew(), "unrenewed for 10 s: b takes it"
            lease = await kube.get(b.path)
            assert lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1
            assert not await a.try_acquire_or_renew(), "a sees b holding it"
            b.leading = True
            await b.release()
            assert await a.try_acquire_or_renew(), "released: no wait"
            stale = await kube.get(a.path)  # what b read before a's next renewal
            assert await a.try_acquire_or_renew()
            with pytest.raises(ApiError) as err:
                await b._write(stale, b._new_spec(stale["spec"]))  # noqa: SLF001
            assert err.value.status in (409, 422)
        finally:
            await kube.close()

    asyncio.run(scenario())
