"""How the operator reads the results of record: once per size at start, then only the size whose
evaluator reported or whose evaluation JobSet changed, and only the objects written since; an
idle operator makes no storage requests and no API writes.

The Controller runs in this process against the local API server, so the storage layer's calls
can be counted; the test delivers what the watches would (every object, as MODIFIED events)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from ladder_api import artifacts, storage
from ladder_kube.aio import AsyncClient
from ladder_kube.client import Client
from ladder_kube.credentials import load_credentials
from ladder_operator.controller import Controller
from ladder_testing.apiserver.fixture import running_apiserver
from ladder_trainer.status_report import ClusterReporter
from tests.operator.harness import InProcess as World
from tests.operator.harness import results_for, tiny

COUNTED = ("list_dir", "read_bytes", "write_bytes", "size")


@pytest.fixture
def counted(monkeypatch) -> Counter:
    """Every call of the storage layer's primitives, by name (artifacts and the operator go
    through them for local paths and gs:// alike)."""
    calls: Counter = Counter()
    for name in COUNTED:
        real = getattr(storage, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(storage, name, wrapper)
    return calls


def test_the_operator_reads_what_is_new_when_woken_and_nothing_when_idle(tmp_path, bucket, counted):
    with running_apiserver(tmp_path / "api") as api:
        world = World(api, bucket)
        asyncio.run(_scenario(world, counted))


async def _scenario(world: World, counted: Counter) -> None:
    cluster = world.cluster
    exp = tiny(cluster.ns)
    name = exp["metadata"]["name"]
    cluster.create(exp)
    widths = (32, 64, 96)

    # The first reconcile reads each size once (a listing, and a look for the results.json of the
    # layout before results/) and records each run's config beside its files.
    await world.deliver()
    assert counted["list_dir"] == len(widths) and counted["read_bytes"] == len(widths)
    assert counted["write_bytes"] == len(widths)
    root = storage.join(cluster.output_uri, name)
    assert [r.width for r in artifacts.read_run_configs(root)] == list(widths)
    assert cluster.status(name)["summary"]["measured"] == "0/108"

    # Nothing new: reconciles cost no storage request, and no API write.
    counted.clear()
    api_before = world.api.request_counts()
    await world.deliver()
    await world.deliver()
    assert sum(counted.values()) == 0
    writes = {k: v - api_before.get(k, 0) for k, v in world.api.request_counts().items()
              if k[0] in ("apply", "patch", "create", "update", "delete") and v != api_before.get(k, 0)}
    assert writes == {}, "an idle operator writes nothing"

    # Training progress wakes the operator, but is no reason to read results.
    ClusterReporter(name, cluster.ns, 32, client=world.client()).report(step=300, total_steps=600)
    await world.deliver()
    assert sum(counted.values()) == 0

    # An evaluator's write and report: one listing of that size and the one new object.
    world.evaluate(name, 32, results_for(32, 600, 200.0, steps=(4, 8), guidance=(1.0, 2.0)))
    counted.clear()
    await world.deliver()
    assert (counted["list_dir"], counted["read_bytes"], counted["write_bytes"]) == (1, 1, 0)
    c32 = next(s for s in cluster.status(name)["sizes"] if s["width"] == 32)
    assert c32["measurements"]["recorded"] == 4 and c32["measurements"]["bestFid"] == pytest.approx(26.0)

    # A second write of the same size: the listing, and only the object written since.
    world.evaluate(name, 32, results_for(32, 600, 200.0, steps=(16,), guidance=(1.0, 2.0, 4.0)))
    counted.clear()
    await world.deliver()
    assert (counted["list_dir"], counted["read_bytes"]) == (1, 1)
    assert cluster.status(name)["summary"]["measured"] == "7/108"

    # The evaluation JobSet changing is a reason too (its completion, after the last report).
    cluster.set_jobset(f"{name}-c32", "completed")
    await world.deliver()  # the evaluation JobSet is created: c32's trigger changed
    counted.clear()
    cluster.set_jobset(f"{name}-c32-eval", "completed")
    await world.deliver()
    assert counted["list_dir"] == 1, "only c32, whose evaluation JobSet changed"
    counted.clear()
    await world.deliver()
    assert sum(counted.values()) == 0
    await world.kube.close()


def test_after_a_restart_the_first_reconcile_reads_every_size_again(tmp_path, bucket, counted):
    """A new operator process has read nothing: it reads each size once, then is idle again."""
    with running_apiserver(tmp_path / "api") as api:
        world = World(api, bucket)
        exp = tiny(world.cluster.ns)
        world.cluster.create(exp)
        asyncio.run(world.deliver())
        world.evaluate(exp["metadata"]["name"], 64, results_for(64, 600, 200.0))
        asyncio.run(world.deliver())
        restarted = World.__new__(World)
        restarted.api, restarted.cluster = api, world.cluster
        restarted.kube = AsyncClient(Client(load_credentials(str(api.kubeconfig)), user_agent="op/2"))
        restarted.controller = Controller(restarted.kube, namespaces=[world.cluster.ns], kueue_version=None)
        counted.clear()
        asyncio.run(restarted.deliver())
        assert counted["list_dir"] == 3 and counted["read_bytes"] == 3 + 1  # legacy probes + the object
        counted.clear()
        asyncio.run(restarted.deliver())
        assert sum(counted.values()) == 0
