"""The status stays small at the paper's scale and fits at the largest scale the caps allow.

examples/paper-v5e.yaml with `checkpoints: all` (the 5 checkpoints its recipe keeps: 11 sizes x
5 x 3 samplers x 6 steps and the budgets' steps x 9 guidance scales x 2 metrics = 34,380
measurements) is written through the real writers (the operator's Controller, the trainers'
reporters, two evaluator processes per size: an old one and its replacement) against the local
API server, the results to a bucket of the GCS emulator. The whole object, managedFields
included, stays under 256 KiB (etcd refuses 1.5 MiB; the results in the status alone are over
that), and the summary is ladder_api.frontier.summarize_for over every result of record in
storage. The largest status the caps allow (48 sizes, long messages, every frontier view and
Pareto front full, every point tied with every other width, a prediction per size) stays under
1 MiB, well within etcd's limit."""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from ladder_api import grid, storage
from ladder_api.frontier import MAX_POINTS, sampling_cost, summarize_for
from ladder_api.plan import expand
from ladder_api.spec import ScalingExperiment
from ladder_api.status import Result
from ladder_kube.ownership import new_incarnation
from ladder_testing.apiserver.fixture import running_apiserver
from ladder_trainer.status_report import ClusterReporter
from tests.operator.harness import InProcess, load_example, with_changes

pytestmark = pytest.mark.slow
BOUND = 256 * 1024
LARGEST_BOUND = 1024 * 1024
ETCD_LIMIT = 1536 * 1024


def _fid(width: int, step: int, sampler: str, n: int, g: float, total: int) -> float:
    """A plausible FID surface: better with size, steps and training, a guidance optimum near
    4, DDPM worse at few steps. Smooth, so the Pareto front is long (every cost can win)."""
    base = 8.0 + 90.0 / n ** 0.8 * (64 / width) ** 0.3 + 0.35 * (g - 4.0) ** 2
    return round(base + (total - step) / 20_000 + (3.0 / n if sampler == "ddpm" else 0.0), 4)


def grid_results(run, steps: list[int]) -> list[list[Result]]:
    """One list per grid point and checkpoint, as the evaluator writes them (both metrics), each
    with its interval and standard error, so the frontier's decisions carry ties. Without the
    bootstrap replicates: they stay in storage, and only add a win probability per point to the
    status (this keeps the test's summaries fast)."""
    ev, out = run.evaluation, []
    settings = {"autoencoder": "sd-vae", "referenceSet": "coco2014-val-30k", "weights": "ema",
                "predictionType": "epsilon", "seed": "0", "resamples": "100"}
    for step in steps:
        for p in grid.run_grid_points(run):
            paper, with_g = sampling_cost(run.model.normalized_cost, p.steps, p.guidance)
            fid = _fid(run.width, step, p.sampler, p.steps, p.guidance, run.training.steps)
            values = {"fid-inception": (fid, 0.15), "clip-score": (round(0.3 - fid / 1000, 5), 0.001)}
            out.append([Result(
                id=p.result_id(run.width, step, metric), width=run.width, checkpoint_step=step,
                sampler=p.sampler, steps=p.steps, guidance=p.guidance, metric=metric, value=v,
                ci_low=round(v - 2 * se, 5), ci_high=round(v + 2 * se, 5), stderr=se, confidence=0.95,
                num_samples=ev.num_samples, gflops_per_forward=run.model.gflops_per_forward,
                sampling_cost=paper, sampling_cost_with_guidance=with_g,
                settings={**settings, **({"eta": "0"} if p.sampler == "ddim" else {}),
                          **({"features": "inception"} if metric.startswith("fid") else {})},
            ) for metric, (v, se) in values.items()])
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
        per_size = {run.width: grid.expected_count(run) for run in plan.runs}  # budgets: per size
        total = sum(per_size.values())
        assert len(_checkpoints(plan.runs[0])) == 5 and total == 34_380
        world.cluster.create(exp)
        try:
            asyncio.run(_run_to_the_end(world, name, runs))
            obj = world.cluster.experiment(name)
        finally:
            asyncio.run(world.kube.close())
        status = obj["status"]
        assert status["summary"]["measured"] == f"{total}/{total}"
        assert all(s["measurements"] == {**s["measurements"], "recorded": per_size[s["width"]],
                                         "expected": per_size[s["width"]]} for s in status["sizes"])

        size = len(json.dumps(obj, separators=(",", ":")))
        managed = len(json.dumps(obj["metadata"]["managedFields"], separators=(",", ":")))
        managers = {m["manager"] for m in obj["metadata"]["managedFields"]}
        managers = {m if m == "ladder-operator" else m.rsplit("-", 1)[0] for m in managers}
        assert {"ladder-operator", "ladder-trainer-c768", "ladder-evaluator-c768-w0"} <= managers
        print(f"\nobject {size} bytes ({managed} of them managedFields), bound {BOUND}")
        assert size < BOUND

        recorded = world.cluster.recorded(name)
        assert len(recorded) == total
        control = len(json.dumps([r.to_wire() for r in recorded], separators=(",", ":")))
        assert control > ETCD_LIMIT, "the results themselves would not fit: the bound means something"
        ev = plan.runs[0].evaluation
        expected = summarize_for(recorded, 11, 11, ev, "fid-inception").to_wire()
        summary = {k: v for k, v in status["summary"].items() if k != "measured"}
        assert summary == expected
        assert [v["sampler"] for v in summary["views"]] == ["ddim", "dpmpp_2m", "ddpm", "pooled"]
        for view in summary["views"]:
            assert 1 < len(view["pareto"]) <= MAX_POINTS and 1 < len(view["frontier"]) <= MAX_POINTS
        headline = [r for r in recorded if r.metric == "fid-inception" and r.checkpoint_step == 500_000
                    and r.sampler == "ddim" and r.guidance in ev.best_of_guidance_scales()]
        best = min(headline, key=lambda r: (r.value, r.sampling_cost, r.width))
        assert summary["bestWidth"] == best.width and math.isclose(summary["bestFid"], best.value)


def test_the_largest_status_the_caps_allow_fits_too(tmp_path, bucket):
    """Worst case by the caps, written by the real writers: 48 sizes (MAX_WIDTHS), each failed
    with a message past the clip, reported by a trainer and an evaluator and by their
    replacements, and a summary of MAX_VIEWS views whose frontiers and Pareto fronts hold
    MAX_POINTS points, each tied with every other width and listing MAX_TIE_SETTINGS tied settings,
    and a prediction line per size."""
    from ladder_api import limits as lim
    from ladder_api.conditions import experiment_status
    from ladder_api.digest import Digest
    from ladder_api.estimate import estimate
    from ladder_api.status import (
        FrontierPoint,
        FrontierView,
        Measurements,
        SizePhase,
        SizeStatus,
        Summary,
        TieSetting,
    )
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
                              guidance=7.123456789, fid=12.3456789, cost=123.456789,
                              fid_low=11.3456789, fid_high=13.3456789, win_probability=0.123456789,
                              ties=[w for w in widths if w != 2048],
                              tie_settings=[TieSetting(width=1536, sampler="dpmpp_2m", steps=50,
                                                       guidance=7.123456789, fid=12.3456789)]
                              * lim.MAX_TIE_SETTINGS, tie_settings_total=99_999)
        points = [point] * lim.MAX_POINTS
        views = [FrontierView(sampler=v, frontier=points, pareto=points)
                 for v in ("dpmpp_2m", "ddim", "ddpm", "pooled")]
        assert len(views) == lim.MAX_VIEWS
        line = ("c2048 is predicted to win budgets from 123.5 on, with probability 0.51 to 0.99 "
                "(predicted FID at 123.5: 12.3 [11.3, 13.3]).")
        summary = Summary(best_fid=1.23456789, best_width=2048, fid_metric="fid-inception",
                          measured="99999/100000", confidence=0.95, frontier_sampler="dpmpp_2m",
                          best_of_guidance=[1.0 + 0.123456789 * i for i in range(lim.MAX_GRID_LIST)],
                          frontier=points, pareto=points, views=views, predictions=[line] * lim.MAX_WIDTHS)
        most = Measurements(recorded=99_999, expected=100_000, failed=99_999, best_fid=1.23456789)
        digest = Digest(dict.fromkeys(widths, most), summary)
        status = experiment_status(sizes, digest, now="2026-01-01T00:00:00Z", generation=12345,
                                   spec_hash="f" * 16, code_version="0.1.0", estimate=estimate(plan),
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
    print(f"\nlargest status: {size} bytes, bound {LARGEST_BOUND}")
    assert len(obj["status"]["sizes"]) == lim.MAX_WIDTHS and all(
        len(s["message"]) <= 512 and s["evaluator"]["recorded"] == 2 for s in obj["status"]["sizes"])
    assert len(obj["status"]["summary"]["views"]) == lim.MAX_VIEWS and obj["status"]["cost"]
    assert size < LARGEST_BOUND
