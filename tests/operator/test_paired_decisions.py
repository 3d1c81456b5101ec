"""A cluster and a local run decide identically from the same results of record.

The operator (ladder_operator.results.ResultsCache, which keeps bootstrap replicates only of the
FID it ranks by) and `ladder run` (ladder_local.observe.SizeWatcher) read the results of record
from storage, here a bucket of the GCS emulator, and both summarize them with
ladder_api.digest.compute. The results are made so that only the paired comparison (replicate b
of every result is the same resample) separates the sizes: compared by their standard errors
they would be a tie. Both summaries must say "c32 wins", with the same win probabilities, so both
read the replicates and the resample identity (seed, sample count) from storage and pair them."""

from __future__ import annotations

import random

from ladder_api import digest, storage
from ladder_api.artifacts import ResultsWriter
from ladder_api.frontier import sampling_cost
from ladder_api.plan import expand
from ladder_api.spec import ScalingExperiment
from ladder_api.status import Result, result_id
from ladder_local.observe import SizeWatcher
from ladder_operator.results import ResultsCache
from tests.operator.harness import tiny

RESAMPLES = 200


def _results(run, noise: list[float], rng: random.Random) -> list[Result]:
    """Every grid point of `run` on FID, 0.15 worse per size step, sharing the resamples' noise
    (sd 1, far larger than the differences) plus a little of its own; a CLIP score with
    replicates too, which the operator drops (it never ranks by it)."""
    out = []
    for sampler in run.evaluation.samplers:
        for steps in run.evaluation.steps:
            for g in run.evaluation.guidance_scales:
                paper, with_g = sampling_cost(run.model.normalized_cost, steps, g)
                fid = 10.0 + 0.15 * (run.width // 32) + 1.0 / steps + abs(g - 2.0)
                reps = [fid + c + rng.gauss(0, 0.01) for c in noise]
                for metric, value, r in (("fid-digits-classifier", fid, reps), ("clip-score", 0.3, reps)):
                    out.append(Result(
                        id=result_id(run.width, run.training.steps, str(sampler), steps, g, metric),
                        width=run.width, checkpoint_step=run.training.steps, sampler=str(sampler),
                        steps=steps, guidance=g, metric=metric, value=value, num_samples=500,
                        gflops_per_forward=run.model.gflops_per_forward, sampling_cost=paper,
                        sampling_cost_with_guidance=with_g, settings={"seed": "0"}, stderr=1.0,
                        ci_low=min(r), ci_high=max(r), confidence=0.95, replicates=r))
    return out


def test_a_cluster_and_a_local_run_decide_identically_from_the_results_of_record(bucket):
    doc = tiny("ns", "paired")
    doc["spec"]["storage"] = {"outputUri": bucket + "/paired-decisions/"}
    exp = ScalingExperiment.model_validate(doc)
    plan = expand(exp)
    assert plan.root.startswith("gs://")
    noise_rng = random.Random(3)
    noise = [noise_rng.gauss(0.0, 1.0) for _ in range(RESAMPLES)]
    for run in plan.runs:
        ResultsWriter(run.paths.results).write(_results(run, noise, random.Random(run.width)))
    done = {run.width for run in plan.runs}

    cluster = ResultsCache().digest(("ns", "paired"), plan.runs, {}, done=done).summary
    watched = {run.width: SizeWatcher(run, 0.0).observe(fresh=True).results for run in plan.runs}
    local = digest.compute(plan.runs, watched, done).summary

    assert cluster == local
    head = cluster.frontier
    assert head and all(p.win_probability is not None for p in head), "paired: replicates were read"
    assert all(p.ties == [] and p.width == 32 for p in head), "decided by pairing (a tie by stderr)"
    assert storage.list_dir(plan.runs[0].paths.results), "the results of record are in the bucket"
