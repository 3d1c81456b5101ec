"""Sampling cost and the sampling-efficiency frontier: pure functions of the results.

The paper's headline ("at a sampling cost of 3 the 83M model has the best FID") is a question
about these functions, so they live in ladder_api (no JAX, no torch): the evaluator calls
`sampling_cost` when it records a measurement, and the operator and `ladder report` call
`summarize` on whatever results exist so far.

Cost conventions (both recorded, because the paper does not say which one it used):
- paper cost = normalized model cost (forward FLOPs relative to c = 320) x sampling steps;
- cost with guidance = the same, counting classifier-free guidance's second (unconditional)
  forward pass, i.e. x2 whenever guidance needs both passes.

Which results enter the frontier: the FID results of one metric (see `pick_fid_metric`), and per
width only its newest evaluated checkpoint, so a frontier never mixes a half-trained model with
finished ones. Failed measurements (Result.error) never enter. Ties are broken deterministically
(lower cost, then smaller width, then sampler name, steps, guidance), so the same results always
give the same summary.

Decisions carry their confidence (ladder_api.uncertainty): at each budget the winner is the best
point estimate, and every other width whose best setting there is not distinguishable from it (the
interval of their FID difference, paired over the shared bootstrap resamples when both results
have replicates, else from the two standard errors, holds 0) is listed as a tie. A width wins a
budget in words only when its tie list is empty. Each point also lists the settings (any size,
sampler, steps and guidance within the budget, the winner's size included) not distinguishable
from the winning one, best first, and how many there are: the intervals are computed once per
(setting, winner) pair, so the cost grows with the distinct winners, not with the budgets.

The summary is bounded, because it lives in the status (etcd refuses objects over 1.5 MiB, and
every status write is sent to every watcher): each frontier keeps one point per budget at which
the decision changes (the winner and its ties hold until the next point, so nothing is lost), and
every frontier and Pareto front is thinned to MAX_POINTS (see `thin`). Without the thinning they
are bounded by the distinct sampling costs (widths x step counts), already 66 for the paper.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from ladder_api import uncertainty
from ladder_api.grid import fid_features_of, fid_metric
from ladder_api.limits import MAX_POINTS, MAX_TIE_SETTINGS
from ladder_api.predict import Unfinished, predict_frontier, prediction_words
from ladder_api.spec import POOLED, FidFeatures
from ladder_api.status import FrontierPoint, FrontierView, Result, Summary, TieSetting

PREFERRED_FID = fid_metric(FidFeatures.inception)
CostKind = Literal["paper", "with_guidance"]


def forwards_per_step(guidance: float | None) -> int:
    """U-Net forwards per sampling step. Guidance 1 is the conditional model alone and 0 the
    unconditional model alone (eps_u + g (eps_c - eps_u)); any other scale needs both."""
    if guidance is None or guidance in (0.0, 1.0):
        return 1
    return 2


def sampling_cost(normalized_cost: float, steps: int, guidance: float | None) -> tuple[float, float]:
    """(paper cost, cost counting guidance's extra forward) for one sampling setting."""
    if steps < 1:
        raise ValueError(f"steps must be positive, got {steps}")
    if normalized_cost < 0:
        raise ValueError(f"normalized_cost must be non-negative, got {normalized_cost}")
    paper = normalized_cost * steps
    return paper, paper * forwards_per_step(guidance)


def pick_fid_metric(results: Iterable[Result], preferred: str | None = None) -> str | None:
    """The FID the summary ranks by: `preferred` if given, else fid-inception when present,
    else the alphabetically first fid-* metric. None when no FID was measured yet."""
    if preferred is not None:
        return preferred
    names = sorted({r.metric for r in results if fid_features_of(r.metric)})
    if not names:
        return None
    return PREFERRED_FID if PREFERRED_FID in names else names[0]


def measured(results: Iterable[Result]) -> list[Result]:
    """The results that hold a value (failed measurements have an error instead)."""
    return [r for r in results if not r.failed]


def _cost(r: Result, kind: CostKind) -> float:
    return r.sampling_cost if kind == "paper" else r.sampling_cost_with_guidance


def _rank(r: Result, kind: CostKind) -> tuple:
    """Sort key: better FID first, then the deterministic tie-breakers."""
    return (r.value, _cost(r, kind), r.width, r.sampler, r.steps, r.guidance)


def _point(r: Result, budget: float, kind: CostKind) -> FrontierPoint:
    return FrontierPoint(
        budget=budget, width=r.width, sampler=r.sampler, steps=r.steps, guidance=r.guidance,
        fid=r.value, cost=_cost(r, kind), fid_low=r.ci_low, fid_high=r.ci_high,
    )


def _paired(a: Result, b: Result) -> bool:
    """Whether replicate i of a and b is the same resample: same sample count and seed (hence the
    same index sets) and as many replicates."""
    return (bool(a.replicates) and b.replicates is not None and len(a.replicates) == len(b.replicates)
            and a.num_samples == b.num_samples and a.settings.get("seed") == b.settings.get("seed"))


def difference_interval(a: Result, b: Result, confidence: float) -> tuple[float, float] | None:
    """Interval of a.value - b.value: paired over shared resamples when both have replicates,
    else from standard errors; None when either result carries no uncertainty."""
    if _paired(a, b):
        return uncertainty.paired_difference(a.replicates, b.replicates, confidence)
    if a.stderr is None or b.stderr is None:
        return None
    return uncertainty.unpaired_difference((a.value, a.stderr), (b.value, b.stderr), confidence)


class _Within:
    """What the results within a growing budget say: per width its best setting and the
    elementwise minimum of its settings' replicates (its best in each resample). Budgets are
    visited in increasing order and each result is added once, so a frontier over R results, W
    widths, K budgets and B resamples costs O((R + K) B) for the win probabilities (each
    resample's leader is updated as results are added), not O(K R B); difference intervals are
    cached per pair of settings."""

    def __init__(self, kind: CostKind):
        self.kind = kind
        self.best: dict[int, Result] = {}
        self.mins: dict[int, list[float]] = {}
        self.first: Result | None = None
        self.seen: list[Result] = []  # every result within the budget, in the order added
        self.paired = True
        self._diffs: dict[tuple[str, str], tuple[float, float] | None] = {}
        self.top: list[float] = []  # per resample, the lowest value within the budget
        self.leaders: list[set[int]] = []  # per resample, the widths holding it

    def add(self, r: Result) -> None:
        self.first = self.first or r
        self.seen.append(r)
        if r.width not in self.best or _rank(r, self.kind) < _rank(self.best[r.width], self.kind):
            self.best[r.width] = r
        self.paired = self.paired and _paired(self.first, r)
        if self.paired:
            m = self.mins.get(r.width)
            reps = list(r.replicates)
            self.mins[r.width] = reps if m is None else uncertainty.elementwise_min(m, reps)
            self._lead(r.width, reps)

    def _lead(self, width: int, reps: list[float]) -> None:
        """Update each resample's leaders: values only fall as results are added, so a resample's
        leader can only become the width just added (or join it on an exact tie)."""
        if not self.top:
            self.top, self.leaders = list(reps), [{width} for _ in reps]
            return
        for i, v in enumerate(reps):
            if v < self.top[i]:
                self.top[i], self.leaders[i] = v, {width}
            elif v == self.top[i]:
                self.leaders[i].add(width)

    def _tied(self, rival: Result, best: Result, confidence: float) -> bool:
        key = (rival.id, best.id)
        if key not in self._diffs:  # best settings change rarely from budget to budget
            self._diffs[key] = difference_interval(rival, best, confidence)
        interval = self._diffs[key]
        return interval is not None and interval[0] <= 0.0

    def decide(self, budget: float, confidence: float) -> FrontierPoint:
        """The best setting at this budget, the widths and settings tied with it, its win
        probability."""
        best = min(self.best.values(), key=lambda r: _rank(r, self.kind))
        point = _point(best, budget, self.kind)
        point.ties = [w for w in sorted(self.best)
                      if w != best.width and self._tied(self.best[w], best, confidence)]
        tied = sorted((r for r in self.seen if r is not best and self._tied(r, best, confidence)),
                      key=lambda r: _rank(r, self.kind))
        point.tie_settings = [TieSetting(width=r.width, sampler=r.sampler, steps=r.steps, guidance=r.guidance,
                                         fid=r.value) for r in tied]
        point.tie_settings_total = len(tied)
        if self.paired:
            point.win_probability = sum(1.0 / len(k) for k in self.leaders if best.width in k) / len(self.top)
        return point


def fid_results(
    results: Iterable[Result], fid_metric: str, *, newest_checkpoint_only: bool = True
) -> list[Result]:
    """The results the frontier is built from: one FID metric, newest checkpoint per width."""
    chosen = [r for r in results if r.metric == fid_metric and not r.failed]
    if not newest_checkpoint_only:
        return chosen
    newest: dict[int, int] = {}
    for r in chosen:
        newest[r.width] = max(newest.get(r.width, r.checkpoint_step), r.checkpoint_step)
    return [r for r in chosen if r.checkpoint_step == newest[r.width]]


def frontier(
    results: Sequence[Result], budgets: Sequence[float] | None = None, cost: CostKind = "paper",
    confidence: float = 0.95,
) -> list[FrontierPoint]:
    """For each budget, the best measurement whose cost is within it (one metric's results), with
    the widths it is not distinguishable from at `confidence`.

    Budgets default to the distinct costs present, which is where the frontier can change. A
    budget below every cost gets no point.
    """
    results = measured(results)
    if budgets is None:
        budgets = sorted({_cost(r, cost) for r in results})
    ordered = sorted(results, key=lambda r: (_cost(r, cost),) + _rank(r, cost))
    within, i, out = _Within(cost), 0, []
    for b in sorted(budgets):
        limit = b + 1e-12 * max(1.0, abs(b))
        while i < len(ordered) and _cost(ordered[i], cost) <= limit:
            within.add(ordered[i])
            i += 1
        if within.best:
            out.append(within.decide(b, confidence))
    return out


def pareto(results: Sequence[Result], cost: CostKind = "paper") -> list[FrontierPoint]:
    """Measurements no other measurement beats on both cost and FID, by increasing cost."""
    out: list[FrontierPoint] = []
    best = float("inf")
    for r in sorted(measured(results), key=lambda r: (_cost(r, cost),) + _rank(r, cost)):
        if r.value < best:
            best = r.value
            out.append(_point(r, _cost(r, cost), cost))
    return out


def best_over_guidance(
    results: Sequence[Result], cost: CostKind = "paper", per_sampler: bool = True,
    guidance: Sequence[float] | None = None,
) -> list[FrontierPoint]:
    """The paper's protocol: the best FID per (width, steps) over the guidance scales given (all
    when None; the paper's Figure 9: 1.5 to 8), per sampler unless `per_sampler` is False, sorted
    by width, sampler, steps."""
    groups: dict[tuple, list[Result]] = {}
    for r in view_results(measured(results), POOLED, guidance):
        key = (r.width, r.sampler if per_sampler else "", r.steps)
        groups.setdefault(key, []).append(r)
    out = []
    for key in sorted(groups):
        r = min(groups[key], key=lambda r: _rank(r, cost))
        out.append(_point(r, _cost(r, cost), cost))
    return out


def view_results(
    results: Iterable[Result], view: str, guidance: Sequence[float] | None = None
) -> list[Result]:
    """The results one view chooses from: one sampler's (all of them for `pooled`), at the
    guidance scales given (all when None)."""
    keep = None if guidance is None else {float(g) for g in guidance}
    return [r for r in results
            if (view == POOLED or r.sampler == view) and (keep is None or float(r.guidance) in keep)]


def _decision(p: FrontierPoint) -> tuple:
    settings = tuple((t.width, t.sampler, t.steps, t.guidance) for t in p.tie_settings)
    return (p.width, p.sampler, p.steps, p.guidance, tuple(p.ties), settings)


def bound_ties(points: Sequence[FrontierPoint], max_settings: int | None) -> list[FrontierPoint]:
    """Each point with at most `max_settings` tied settings listed (the best; the count stays):
    the status's bound. None keeps all, for the report."""
    if max_settings is None:
        return list(points)
    return [p if len(p.tie_settings) <= max_settings else
            p.model_copy(update={"tie_settings": p.tie_settings[:max_settings]}) for p in points]


def merge_equal(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    """Consecutive points that make the same decision (the same setting, tied with the same
    widths), as one: the first budget it holds at."""
    out: list[FrontierPoint] = []
    for p in points:
        if not out or _decision(out[-1]) != _decision(p):
            out.append(p)
    return out


def thin(points: Sequence[FrontierPoint], max_points: int | None) -> list[FrontierPoint]:
    """At most `max_points` (>= 2) of `points`, evenly spaced by rank: the first (cheapest) and the
    last (the best FID, on a frontier or a Pareto front) are always kept. None keeps all."""
    if max_points is None or len(points) <= max_points:
        return list(points)
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    step = (len(points) - 1) / (max_points - 1)
    return [points[round(i * step)] for i in range(max_points)]


def summarize(
    results: Iterable[Result],
    sizes_done: int,
    sizes_total: int,
    fid_metric: str | None = None,
    *,
    budgets: Sequence[float] | None = None,
    cost: CostKind = "paper",
    confidence: float = 0.95,
    unfinished: Sequence[Unfinished] = (),
    views: Sequence[str] = (POOLED,),
    guidance: Sequence[float] | None = None,
    max_points: int | None = MAX_POINTS,
) -> Summary:
    """The status summary: progress, and per view (a sampler, or pooled: the first is the
    headline) the frontier (equal consecutive decisions merged) and Pareto front over the guidance
    scales given (all when None), each at most `max_points` long (None: all, for the report); best
    FID, frontier and pareto are the headline's. Per sampler, because a point of one sampler
    (DPM-Solver++ at few steps) would otherwise decide "which size wins" in a study whose headline
    is another (DDIM)."""
    results = list(results)
    metric = pick_fid_metric(results, fid_metric)
    summary = Summary(
        sizes_done=sizes_done, sizes_total=sizes_total, progress=f"{sizes_done}/{sizes_total}",
        fid_metric=metric, confidence=confidence, frontier_sampler=views[0] if views else POOLED,
        best_of_guidance=sorted({float(g) for g in guidance}) if guidance is not None else [],
    )
    if metric is None:
        return summary
    chosen = fid_results(results, metric)
    for view in views or (POOLED,):
        mine = view_results(chosen, view, guidance)
        # Assigned, not validated: the models' maxItems bound the status (max_points), while the
        # report asks for whole fronts (max_points None).
        v = FrontierView(sampler=view)
        v.frontier = thin(merge_equal(frontier(mine, budgets, cost, confidence)), max_points)
        v.frontier = bound_ties(v.frontier, None if max_points is None else MAX_TIE_SETTINGS)
        v.pareto = thin(pareto(mine, cost), max_points)
        summary.views.append(v)
    head = view_results(chosen, summary.frontier_sampler, guidance)
    if not head:
        return summary
    best = min(head, key=lambda r: _rank(r, cost))
    summary.best_fid = best.value
    summary.best_width = best.width
    summary.frontier = summary.views[0].frontier
    summary.pareto = summary.views[0].pareto
    if unfinished and cost == "paper":
        todo = {u.width for u in unfinished}
        finished = [r for r in head if r.width not in todo]
        grid = sorted({r.sampling_cost for r in finished} | {u.min_cost for u in unfinished})
        summary.predictions = prediction_words(predict_frontier(finished, unfinished, grid, confidence))
    return summary


def summarize_for(results: Iterable[Result], sizes_done: int, sizes_total: int, evaluation,
                  fid_metric: str | None = None, *, cost: CostKind = "paper",
                  unfinished: Sequence[Unfinished] = (), max_points: int | None = MAX_POINTS) -> Summary:
    """summarize with the views, guidance scales and confidence an EvaluationSpec names."""
    return summarize(results, sizes_done, sizes_total, fid_metric, cost=cost,
                     views=evaluation.frontier_views(), guidance=evaluation.best_of_guidance_scales(),
                     confidence=evaluation.bootstrap.confidence, unfinished=unfinished,
                     max_points=max_points)


def fid_cell(fid: float, low: float | None, high: float | None) -> str:
    """An FID with its interval, as both tables print it."""
    return f"{fid:.3f}" if low is None or high is None else f"{fid:.3f} [{low:.3f}, {high:.3f}]"


def decision(p: FrontierPoint) -> str:
    """The point's decision in words: a win only when no other width is within the interval."""
    if p.fid_low is None and p.win_probability is None and not p.ties:
        return "no interval"
    if p.ties:
        return "tie with " + ", ".join(f"c{w}" for w in p.ties)
    return "wins" + ("" if p.win_probability is None else f" (p={p.win_probability:.2f})")


def tie_settings_cell(p: FrontierPoint, max_listed: int | None = None) -> str:
    """The settings tied with the point, best first ("-" when none), at most `max_listed` named."""
    if not p.tie_settings_total:
        return "-"
    shown = p.tie_settings if max_listed is None else p.tie_settings[:max_listed]
    text = ", ".join(f"c{t.width} {t.sampler} {t.steps} steps g{t.guidance:g} ({t.fid:.3f})" for t in shown)
    more = p.tie_settings_total - len(shown)
    return text + (f" (+{more} more)" if more else "")


def frontier_rows(summary: Summary, points: Sequence[FrontierPoint] | None = None,
                  max_listed: int | None = 3) -> list[list[str]]:
    """The frontier (the headline's, or `points`: another view's) as table rows (budget, size,
    sampler, steps, guidance, cost, FID with its interval, decision, the tied settings: at most
    `max_listed` named, None: all), with consecutive budgets that make the same decision merged
    into one row. `ladder status` and the report both print it, so they always agree."""
    rows: list[list[str]] = []
    last = None
    for p in summary.frontier if points is None else points:
        key = _decision(p)
        if key == last:
            continue
        last = key
        rows.append([f"{p.budget:.4g}", f"c{p.width}", p.sampler, str(p.steps), f"{p.guidance:g}",
                     f"{p.cost:.4g}", fid_cell(p.fid, p.fid_low, p.fid_high), decision(p),
                     tie_settings_cell(p, max_listed)])
    return rows


def frontier_words(summary: Summary) -> list[str]:
    """The frontier described from the results themselves, one sentence per run of budgets with
    the same outcome: a size "is best" only where the paired comparison separates it."""
    out: list[str] = []
    runs: list[tuple[tuple, float, float]] = []
    for p in summary.frontier:
        outcome = (p.width, tuple(p.ties))
        if runs and runs[-1][0] == outcome:
            runs[-1] = (outcome, runs[-1][1], p.budget)
        else:
            runs.append((outcome, p.budget, p.budget))
    level = f"{summary.confidence:.0%}" if summary.confidence else "the stated level"
    for (width, ties), lo, hi in runs:
        span = f"budget {lo:.4g}" if lo == hi else f"budgets {lo:.4g} to {hi:.4g}"
        if ties:
            names = ", ".join(f"c{w}" for w in (width, *ties))
            out.append(f"At {span}, {names} are not distinguishable at {level} (c{width} has the "
                       "lowest point estimate).")
        else:
            out.append(f"At {span}, c{width} is best at {level}.")
    return out
