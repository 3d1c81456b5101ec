"""The status stays small at the paper's scale and at the largest scale the caps allow.

examples/paper-v5e.yaml with `checkpoints: all` (the 5 checkpoints its recipe keeps: 11 sizes x
5 x 3 samplers x 6 steps x 8 guidance scales x 2 metrics = 15,840 measurements) is
written through the real writers (the operator's Controller, the trainers' reporters, two
evaluator processes per size: an old one and its replacement) against the local API server, the
results to a bucket of the GCS emulator. The whole object, managedFields included, stays under
256 KiB (etcd refuses 1.5 MiB; the results in the status alone were over that), and the summary
is ladder_api.frontier.summarize over every result of record in storage. The largest status the
caps allow (64 sizes, long messages, full frontier and Pareto front) fits as well."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from ladder_api import grid, storage
from ladder_api.frontier import MAX_POINTS, sampling_cost, summarize
from ladder_api.plan import expand
from ladder_api.spec import ScalingExperiment
from ladder_api.status import Result, result_id
from ladder_kube.ownership import new_incarnation
from ladder_testing.apiserver.fixture import running_apiserver
from ladder_trainer.status_report import ClusterReporter
from tests.operator.harness import InProcess, load_example, with_changes

pytestmark = pytest.mark.slow
BOUND = 256 * 1024
ETCD_LIMIT = 1536 * 1024


def _fid(width: int, step: int, sampler: str, n: int, g: float, total: int) -> float:
    """A plausible FID surface: better with size, steps and training, a guidance optimum near
    4, DDPM worse at few steps. Smooth, so the Pareto front is long (every cost can win)."""
    base = 8.0 + 90.0 / n ** 0.8 * (64 / width) ** 0.3 + 0.35 * (g - 4.0) ** 2
    return round(base + (total - step) / 20_000 + (3.0 / n if sampler == "ddpm" else 0.0), 4)


def grid_results(run, steps: list[int]) -> list[list[Result]]:
    """One list per grid point and checkpoint, as the evaluator writes them (both metrics)."""
    ev, out = run.evaluation, []
    settings = {"autoencoder": "sd-vae", "referenceSet": "coco2014-val-30k", "weights": "ema",
                "predictionType": "epsilon", "seed": "0"}
    for step in steps:
        for sampler in ev.samplers:
            for n in ev.steps:
                for g in ev.guidance_scales:
                    paper, with_g = sampling_cost(run.model.normalized_cost, n, g)
                    fid = _fid(run.width, step, sampler, n, g, run.training.steps)
                    values = {"fid-inception": fid, "clip-score": round(0.3 - fid / 1000, 5)}
                    out.append([Result(
                        id=result_id(run.width, step, sampler, n, g, metric), width=run.width,
                        checkpoint_step=step, sampler=sampler, steps=n, guidance=g, metric=metric, value=v,
                        num_samples=ev.num_samples, gflops_per_forward=run.model.gflops_per_forward,
                        sampling_cost=paper, sampling_cost_with_guidance=with_g,
                        settings={**settings, **({"eta": "0"} if sampler == "ddim" else {}),
                                  **({"features": "inception"} if metric.startswith("fid") else {})},
                    ) for metric, v in values.items()])
    return out


def _checkpoints(run) -> list[int]:
    """The steps the paper's recipe keeps: the newest checkpoint.keep of one per intervalSteps."""
    t = run.training
    kept = grid.checkpoint_count(run.evaluation, t)
    return [t.steps - i * t.checkpoint.interval_steps for i in range(kept)][::-1]


def _train(world: InProcess, name: str, width: int, total: int) -> None:
    """A trainer and its replacement after a preemption, each with its own field manager."""
    ns = world.cluster.ns
    old = ClusterReporter(name, ns, width, client=world.client(), incarnation=new_incarnation(now=1.8e9))
    assert old.report(step=total // 2, total_steps=total, loss=0.2, checkpoint_step=total // 2,
                      checkpoint_uri=f"gs://x/{name}/c{width}/checkpoints/{total // 2}")
    new = ClusterReporter(name, ns, width, client=world.client(),
                          incarnation=new_incarnation(now=1.8e9 + 600))
    assert new.report(step=total, total_steps=total, loss=0.1, checkpoint_step=total,
                      checkpoint_uri=f"gs://x/{name}/c{width}/checkpoints/{total}")


def _evaluate(world: InProcess, name: str, run) -> None:
    """An evaluator writes the first two checkpoints and is replaced; its replacement finds them in
    storage and writes the rest. Reports at the real cadence, flushed at the end. One object per
    checkpoint rather than the evaluator's one per grid point: the status does not depend on how
    the results are split into objects, and the GCS emulator takes ~25 ms per object."""
    steps = _checkpoints(run)
    points = grid_results(run, steps)
    per_step = len(points) // len(steps)
    batches = [[r for point in points[i:i + per_step] for r in point]
               for i in range(0, len(points), per_step)]
    old = world.evaluator(name, run.width, every_s=10.0, incarnation=new_incarnation(now=1.9e9))
    old.existing()
    for batch in batches[:2]:
        old.write(batch)
    old.flush()
    new = world.evaluator(name, run.width, every_s=10.0, incarnation=new_incarnation(now=1.9e9 + 600))
    assert len(new.existing()) == sum(map(len, batches[:2]))
    for batch in batches[2:]:
        new.write(batch)
    new.flush()


async def _run_to_the_end(world: InProcess, name: str, runs: dict[int, object]) -> None:
    cluster = world.cluster
    for _ in range(40):
        await world.deliver()
        if cluster.status(name).get("phase") == "Succeeded":
            return
        for js_name, js in cluster.jobsets(name).items():
            if (js.get("status") or {}).get("terminalState"):
                continue
            width = int(js["metadata"]["labels"]["ladder.dev/width"])
            if js_name.endswith("-eval"):
                _evaluate(world, name, runs[width])
            else:
                _train(world, name, width, runs[width].training.steps)
            cluster.set_jobset(js_name, "completed")
    raise AssertionError(f"not Succeeded: {cluster.status(name).get('message')}")


@pytest.fixture(scope="module")
def bucket(gcs):
    """The experiments' storage: a bucket of the GCS emulator (the operator takes gs:// only)."""
    return gcs.bucket("ladder-bound-tests")


def test_the_paper_grid_with_every_checkpoint_keeps_the_object_under_256_kib(tmp_path, bucket):
    with running_apiserver(tmp_path / "api") as api:
        world = InProcess(api, bucket)
        exp = with_changes(load_example("paper-v5e.yaml", world.cluster.ns), **{
            "evaluation.checkpoints": "all", "storage.outputUri": world.cluster.output_uri})
        name = exp["metadata"]["name"]
        plan = expand(ScalingExperiment.model_validate(exp))
        runs = {run.width: run for run in plan.runs}
        per_size = len(_checkpoints(plan.runs[0])) * 3 * 6 * 8 * 2
        assert len(_checkpoints(plan.runs[0])) == 5 and per_size * 11 == 15_840
        world.cluster.create(exp)
        try:
            asyncio.run(_run_to_the_end(world, name, runs))
            obj = world.cluster.experiment(name)
        finally:
            asyncio.run(world.kube.close())
        status = obj["status"]
        assert status["summary"]["measured"] == "15840/15840"
        assert all(s["measurements"] == {**s["measurements"], "recorded": per_size, "expected": per_size}
                   for s in status["sizes"])

        size = len(json.dumps(obj, separators=(",", ":")))
        managed = len(json.dumps(obj["metadata"]["managedFields"], separators=(",", ":")))
        managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
        managers = {m if m == "ladder-operator" else m.rsplit("-", 1)[0] for m in managers}
        assert {"ladder-operator", "ladder-trainer-c768", "ladder-evaluator-c768"} <= managers
        print(f"\nobject {size} bytes ({managed} of them managedFields), bound {BOUND}")
        assert size < BOUND

        recorded = world.cluster.recorded(name)
        assert len(recorded) == 15_840
        control = len(json.dumps([r.to_wire() for r in recorded], separators=(",", ":")))
        assert control > ETCD_LIMIT, "the results themselves would not fit: the bound means something"
        expected = summarize(recorded, 11, 11, "fid-inception").to_wire()
        summary = {k: v for k, v in status["summary"].items() if k != "measured"}
        assert summary == expected
        assert 1 < len(summary["pareto"]) <= MAX_POINTS and 1 < len(summary["frontier"]) <= MAX_POINTS
        assert summary["bestWidth"] == 768 and math.isclose(summary["bestFid"], min(
            r.value for r in recorded if r.metric == "fid-inception" and r.checkpoint_step == 500_000))


def test_the_largest_status_the_caps_allow_fits_too(tmp_path, bucket):
    """Worst case by the caps, written by the real writers: 64 sizes (MAX_WIDTHS), each failed
    with a message past the clip, reported by a trainer and an evaluator and by their
    replacements, and a summary with MAX_POINTS frontier and Pareto points."""
    from ladder_api import limits as lim
    from ladder_api.conditions import experiment_status
    from ladder_api.digest import Digest
    from ladder_api.status import FrontierPoint, Measurements, SizePhase, SizeStatus, Summary
    from ladder_kube.status import apply_status
    from ladder_operator.reconcile.status import OWNED, owned_wire, with_digest

    widths = [32 * (k + 1) for k in range(lim.MAX_WIDTHS)]
    with running_apiserver(tmp_path / "api") as api:
        world = InProcess(api, bucket)
        cluster, ns = world.cluster, world.cluster.ns
        exp = with_changes(load_example("paper-v5e.yaml", ns), **{
            "ladder.widths": widths, "resources.slices": [{"sliceType": "v5litepod-256"}],
            "resources.overrides": {}, "storage.outputUri": cluster.output_uri})
        plan = expand(ScalingExperiment.model_validate(exp))
        name = exp["metadata"]["name"]
        cluster.create(exp)
        failure = "FailedJobs: " + "x" * 5000  # a JobSet condition quoting a long pod message
        sizes = [SizeStatus(width=w, phase=SizePhase.failed, jobset=f"{name}-c{w}",
                            eval_jobset=f"{name}-c{w}-eval", restarts=20, message=failure) for w in widths]
        point = FrontierPoint(budget=123.456789, width=2048, sampler="dpmpp_2m", steps=50,
                              guidance=7.123456789, fid=12.3456789, cost=123.456789)
        points = [point] * lim.MAX_POINTS
        summary = Summary(best_fid=1.23456789, best_width=2048, fid_metric="fid-inception",
                          measured="99999/100000", frontier=points, pareto=points)
        most = Measurements(recorded=99_999, expected=100_000, failed=99_999, best_fid=1.23456789)
        digest = Digest(dict.fromkeys(widths, most), summary)
        status = experiment_status(sizes, digest, now="2026-01-01T00:00:00Z", generation=12345,
                                   spec_hash="f" * 16, code_version="0.1.0",
                                   storage_root=storage.join(cluster.output_uri, name),
                                   images={"trainer": "t" * 200, "evaluator": "e" * 200})
        owned = with_digest(owned_wire(status), digest, status)
        assert set(owned) <= set(OWNED)
        apply_status(world.client(), ns, name, owned, manager="ladder-operator")
        for w in widths:
            _train(world, name, w, 500_000)
            for t in (1.9e9, 1.9e9 + 600):
                store = world.evaluator(name, w, incarnation=new_incarnation(now=t))
                store.write(grid_results(plan.run(w), [500_000])[0])
                store.flush()
        obj = cluster.experiment(name)
        asyncio.run(world.kube.close())
    size = len(json.dumps(obj, separators=(",", ":")))
    print(f"\nlargest status: {size} bytes, bound {BOUND}")
    assert len(obj["status"]["sizes"]) == lim.MAX_WIDTHS and all(
        len(s["message"]) <= 512 and s["evaluator"]["recorded"] == 2 for s in obj["status"]["sizes"])
    assert size < BOUND
