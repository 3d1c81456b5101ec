"""The evaluation grid: what one run's evaluation measures, defined once for every component.

The evaluator iterates it, `ladder run` counts progress and decides what to skip by it, the
operator hashes it to notice an extended grid, and the report and the frontier read the metric
names it writes. When these disagreed, a size could be evaluated on one checkpoint and counted on
another; now they cannot.

A measurement is (checkpoint step, grid point, metric). A grid point is a small frozen value
(sampler, sampling steps, guidance scale), so settings that later belong to a point (per-sampler
options, step counts derived from a budget) are added to it rather than threaded beside it.

Checkpoint selection (`evaluation.checkpoints`):
- "final" is `training.steps`, not the newest checkpoint present. The trainer always saves its
  last step (whatever the interval) and checkpoint.keep keeps the newest, so a finished run has
  it; the newest checkpoint of a run that stopped early is a half-trained model, and scoring it
  as "final" would record results under a step no other component expects (the runner would
  count the size as never evaluated, the frontier would mix it with finished sizes). So an
  evaluation before that checkpoint exists is a user error naming the step.
- "all" is every checkpoint of this run present now (up to training.steps): with checkpoint.keep
  that is the newest `keep`, the final one among them once training is done.
- a list is exactly those steps, each of which must exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ladder_api.errors import UserError
from ladder_api.plan import short_hash
from ladder_api.spec import EvaluationSpec, FidFeatures, MetricName, SamplerName
from ladder_api.status import Result, result_id

if TYPE_CHECKING:
    from ladder_api.plan import RunConfig
    from ladder_api.spec import TrainingSpec

# --- metric names -------------------------------------------------------------------------------

FID_PREFIX = "fid-"
CLIP_SCORE = "clip-score"
ADHERENCE = "adherence"


def fid_metric(features: FidFeatures | str) -> str:
    """fid-inception (comparable to published numbers) or fid-digits-classifier (offline): the
    name carries the features, so an offline FID is never read as an Inception FID."""
    return f"{FID_PREFIX}{FidFeatures(features).value}"


def metric_name(metric: MetricName | str, fid_features: FidFeatures | str) -> str:
    """The Result.metric string a spec metric is recorded under."""
    m = MetricName(metric)
    if m is MetricName.fid:
        return fid_metric(fid_features)
    if m is MetricName.clip:
        return CLIP_SCORE
    return ADHERENCE


def metric_names(evaluation: EvaluationSpec) -> list[str]:
    """The Result.metric strings of the spec's metrics, in the spec's order."""
    return [metric_name(m, evaluation.fid_features) for m in evaluation.metrics]


def ranking_fid(evaluation: EvaluationSpec) -> str | None:
    """The FID the summary ranks by: the one the spec's evaluation measures (its features); None
    when it measures no FID."""
    if MetricName.fid not in evaluation.metrics:
        return None
    return fid_metric(evaluation.fid_features)


def fid_features_of(metric: str) -> str | None:
    """The features an FID metric name was computed on (None for a metric that is not FID)."""
    return metric[len(FID_PREFIX):] if metric.startswith(FID_PREFIX) else None


# --- grid points --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridPoint:
    """One sampling setting; every checkpoint is scored at every point with every metric."""

    sampler: SamplerName
    steps: int
    guidance: float

    @property
    def label(self) -> str:
        return f"{self.sampler} n={self.steps} g={self.guidance:g}"

    def result_id(self, width: int, checkpoint_step: int, metric: str) -> str:
        return result_id(width, checkpoint_step, self.sampler, self.steps, self.guidance, metric)


def budget_steps(
    evaluation: EvaluationSpec, sampler: SamplerName | str, normalized_cost: float, num_timesteps: int
) -> list[int]:
    """The step counts evaluation.budgets give one sampler of a size of this normalized cost:
    round(budget / cost) per budget, kept when within 1..num_timesteps and the sampler's maxSteps
    (a budget below one step's cost, or beyond the sampler's range, gives no point), ascending."""
    if not evaluation.budgets or normalized_cost <= 0:
        return []
    cap = min(num_timesteps, evaluation.max_steps.get(SamplerName(sampler).value, num_timesteps))
    counts = {round(b / normalized_cost) for b in evaluation.budgets}
    return sorted(n for n in counts if 1 <= n <= cap)


def sampler_steps(
    evaluation: EvaluationSpec, sampler: SamplerName | str, normalized_cost: float | None = None,
    num_timesteps: int = 1000,
) -> list[int]:
    """The explicit steps, then those the budgets add for this size (without repeats)."""
    derived = [] if normalized_cost is None else budget_steps(evaluation, sampler, normalized_cost,
                                                              num_timesteps)
    return list(dict.fromkeys([int(n) for n in evaluation.steps] + derived))


def grid_points(
    evaluation: EvaluationSpec, normalized_cost: float | None = None, num_timesteps: int = 1000
) -> list[GridPoint]:
    """samplers x steps x guidance scales, in the spec's order; with a size's normalized cost,
    the steps its budgets derive follow the explicit ones (see budget_steps)."""
    return [
        GridPoint(SamplerName(s), n, float(g))
        for s in evaluation.samplers
        for n in sampler_steps(evaluation, s, normalized_cost, num_timesteps)
        for g in evaluation.guidance_scales
    ]


def run_grid_points(run: RunConfig) -> list[GridPoint]:
    """The grid of one run (one size): its budgets' steps use its own normalized cost."""
    return grid_points(run.evaluation, run.model.normalized_cost,
                       run.training.noise_schedule.num_timesteps)


# --- workers ------------------------------------------------------------------------------------


def point_cost(point: GridPoint) -> int:
    """U-Net forwards per sample at a point: what a worker's share is balanced by (50 guided steps
    cost 25 times 4 unguided ones)."""
    from ladder_api.frontier import forwards_per_step  # frontier imports this module

    return point.steps * forwards_per_step(point.guidance)


def worker_share(
    work: Sequence[tuple[int, GridPoint]], workers: int, index: int
) -> list[tuple[int, GridPoint]]:
    """The (checkpoint step, grid point) pairs worker `index` of `workers` scores, in `work`'s order.

    Whole points, so each FID is computed where its samples are. A pure function of the list, so
    every worker (and a restarted one) computes the same partition without talking to the others;
    the shares are disjoint and their union is `work`. Balanced by cost, not count: largest first,
    each to the least-loaded worker (lowest index on ties), so no worker draws all the 50-step
    points while another draws the 4-step ones."""
    if not 0 <= index < workers:
        raise UserError(
            f"worker index {index} is outside the partition of evaluation.workers = {workers} "
            f"(0..{workers - 1}); the JobSet sets JOB_COMPLETION_INDEX, `ladder run` --worker"
        )
    load = [0] * workers
    owner: dict[int, int] = {}
    order = sorted(range(len(work)), key=lambda i: (-point_cost(work[i][1]), i))
    for i in order:
        w = min(range(workers), key=lambda k: (load[k], k))
        owner[i] = w
        load[w] += point_cost(work[i][1])
    return [item for i, item in enumerate(work) if owner[i] == index]


def worker_of_pod(env: Mapping[str, str]) -> int:
    """The worker an evaluation pod is: its index in the evaluation JobSet's Indexed Job (one
    single-host pod per worker; validation keeps the eval slice single-host), 0 outside a Job."""
    return int(env.get("JOB_COMPLETION_INDEX", "0"))


# --- checkpoints --------------------------------------------------------------------------------


def planned_checkpoints(
    evaluation: EvaluationSpec, training_steps: int, available: Iterable[int]
) -> list[int]:
    """The checkpoint steps the evaluation covers once training is done, given those present now
    (see the module docstring). Exact once training is done; before, "all" counts the final step
    beside those present."""
    sel = evaluation.checkpoints
    if sel == "final":
        return [training_steps]
    if sel == "all":
        return sorted({s for s in available if s <= training_steps} | {training_steps})
    return sorted(set(sel))


def select_checkpoints(
    evaluation: EvaluationSpec, training_steps: int, available: Iterable[int], where: str
) -> list[int]:
    """The checkpoint steps to evaluate now, every one present in `where`, or a UserError that
    names what is missing and what to do."""
    have = sorted(set(available))
    sel = evaluation.checkpoints
    if sel == "all":
        chosen = [s for s in have if s <= training_steps]
        if not chosen:
            raise UserError(f"no checkpoint found at {where}: train this size first")
        return chosen
    want = planned_checkpoints(evaluation, training_steps, have)
    missing = [s for s in want if s not in have]
    if missing and sel == "final":
        newest = f"newest: step {have[-1]}" if have else "no checkpoint yet"
        raise UserError(
            f"evaluation.checkpoints is final, the checkpoint of training.steps = {training_steps}, "
            f"which is not in {where} ({newest}): finish training this size first (it resumes from "
            "its newest checkpoint), or list the steps to score in evaluation.checkpoints"
        )
    if missing:
        raise UserError(
            f"evaluation.checkpoints asks for steps {missing}, not in {where}; available: {have or 'none'}"
        )
    return want


# --- what an evaluation records -----------------------------------------------------------------


def expected_ids(run: RunConfig, available: Iterable[int]) -> set[str]:
    """The result ids the evaluation of `run` records over its planned checkpoints: recorded ids
    against these tell a finished evaluation from a partial one without starting the evaluator."""
    ev = run.evaluation
    names = metric_names(ev)
    return {
        point.result_id(run.width, step, name)
        for step in planned_checkpoints(ev, run.training.steps, available)
        for point in run_grid_points(run)
        for name in names
    }


def checkpoint_count(evaluation: EvaluationSpec, training: TrainingSpec) -> int:
    """How many checkpoints planned_checkpoints names once training is done, from the spec alone
    (the status and the limits count before any checkpoint exists): 1 for final, the steps listed,
    or for all those the trainer keeps (checkpoint.keep of one save per intervalSteps and the
    final step)."""
    sel = evaluation.checkpoints
    if sel == "final":
        return 1
    if sel == "all":
        saves = -(-training.steps // training.checkpoint.interval_steps)
        return min(training.checkpoint.keep, saves)
    return len(set(sel))


def expected_count(run: RunConfig) -> int:
    """Measurements one size's evaluation records once training is done: checkpoints x its grid
    points (its budgets' steps included) x metrics, which is len(expected_ids) over the
    checkpoints the trainer keeps."""
    per_checkpoint = len(run_grid_points(run)) * len(metric_names(run.evaluation))
    return checkpoint_count(run.evaluation, run.training) * per_checkpoint


def counted(run: RunConfig, results: Iterable[Result]) -> list[Result]:
    """The results of record that count towards the run's current grid (a grid that shrank leaves
    results of record that no longer do): of its width, at one of its grid points, with one of its
    metrics, on a checkpoint its selection covers ("all": any of this run's, up to training.steps)."""
    ev, sel = run.evaluation, run.evaluation.checkpoints
    points = {(p.sampler, p.steps, p.guidance) for p in run_grid_points(run)}
    metrics = set(metric_names(ev))
    steps = None if sel == "all" else {run.training.steps} if sel == "final" else set(sel)
    return [
        r for r in results
        if r.width == run.width and (r.sampler, r.steps, r.guidance) in points and r.metric in metrics
        and (r.checkpoint_step in steps if steps is not None else r.checkpoint_step <= run.training.steps)
    ]


# Evaluation fields added after the first release, with the value that reproduces what Ladder did
# before them (wire name -> legacy value): at that value a field is left out of the hash, so an
# upgrade does not re-run finished evaluations. Add one line per new field.
EVALUATION_LEGACY: dict[str, object] = {
    # one noise seed is what Ladder did before `seeds`
    "seeds": 1,
    # results recorded before intervals keep their values (the evaluator skips recorded ids
    # anyway); at the default the hash is unchanged, so an upgrade re-runs nothing
    "bootstrap": {"resamples": 100, "confidence": 0.95},
    "budgets": [],  # explicit steps only
    "maxSteps": {"dpmpp_2m": 20},  # no effect without budgets
    "clipModel": "ViT-B-32",  # the weights the evaluator image has always baked in
    "clipPretrained": "laion2b_s34b_b79k",
    "samplingDtype": "training",  # training.computeDtype
}

# Evaluation fields that choose how results are summarised, not what is measured: never in the
# hash, so changing them re-runs no evaluation (the summary is recomputed from the results).
SUMMARY_ONLY = frozenset({"bestOfGuidance", "frontierSamplers"})
# Evaluation fields that say how the work is done, not what is measured: never hashed either, so
# scaling the evaluation out or in does not re-run a finished one.
NOT_MEASURED = frozenset({"workers"})


def evaluation_hash(evaluation: EvaluationSpec, legacy: dict[str, object] = EVALUATION_LEGACY) -> str:
    """Fingerprint of the evaluation settings. The operator records it when a size's evaluation
    completes and evaluates again when it changes (an extended grid); the evaluator then skips the
    ids already recorded. Stable across versions (see EVALUATION_LEGACY): the operator compares it
    with hashes that earlier versions recorded in its state annotation."""
    wire = evaluation.to_wire(exclude_none=False)
    kept = {k: v for k, v in wire.items()
            if k not in SUMMARY_ONLY | NOT_MEASURED and (k not in legacy or legacy[k] != v)}
    return short_hash(kept, 12)
