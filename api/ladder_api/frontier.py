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
finished ones. Ties are broken deterministically (lower cost, then smaller width, then sampler
name, steps, guidance), so the same results always give the same summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from ladder_api.grid import fid_features_of, fid_metric
from ladder_api.spec import FidFeatures
from ladder_api.status import FrontierPoint, Result, Summary

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


def _cost(r: Result, kind: CostKind) -> float:
    return r.sampling_cost if kind == "paper" else r.sampling_cost_with_guidance


def _rank(r: Result, kind: CostKind) -> tuple:
    """Sort key: better FID first, then the deterministic tie-breakers."""
    return (r.value, _cost(r, kind), r.width, r.sampler, r.steps, r.guidance)


def _point(r: Result, budget: float, kind: CostKind) -> FrontierPoint:
    return FrontierPoint(
        budget=budget, width=r.width, sampler=r.sampler, steps=r.steps, guidance=r.guidance,
        fid=r.value, cost=_cost(r, kind),
    )


def fid_results(
    results: Iterable[Result], fid_metric: str, *, newest_checkpoint_only: bool = True
) -> list[Result]:
    """The results the frontier is built from: one FID metric, newest checkpoint per width."""
    chosen = [r for r in results if r.metric == fid_metric]
    if not newest_checkpoint_only:
        return chosen
    newest: dict[int, int] = {}
    for r in chosen:
        newest[r.width] = max(newest.get(r.width, r.checkpoint_step), r.checkpoint_step)
    return [r for r in chosen if r.checkpoint_step == newest[r.width]]


def frontier(
    results: Sequence[Result], budgets: Sequence[float] | None = None, cost: CostKind = "paper"
) -> list[FrontierPoint]:
    """For each budget, the best measurement whose cost is within it (one metric's results).

    Budgets default to the distinct costs present, which is where the frontier can change. A
    budget below every cost gets no point.
    """
    if budgets is None:
        budgets = sorted({_cost(r, cost) for r in results})
    out = []
    for b in sorted(budgets):
        within = [r for r in results if _cost(r, cost) <= b + 1e-12 * max(1.0, abs(b))]
        if within:
            out.append(_point(min(within, key=lambda r: _rank(r, cost)), b, cost))
    return out


def pareto(results: Sequence[Result], cost: CostKind = "paper") -> list[FrontierPoint]:
    """Measurements no other measurement beats on both cost and FID, by increasing cost."""
    out: list[FrontierPoint] = []
    best = float("inf")
    for r in sorted(results, key=lambda r: (_cost(r, cost),) + _rank(r, cost)):
        if r.value < best:
            best = r.value
            out.append(_point(r, _cost(r, cost), cost))
    return out


def best_over_guidance(
    results: Sequence[Result], cost: CostKind = "paper", per_sampler: bool = True
) -> list[FrontierPoint]:
    """The paper's protocol: the best FID per (width, steps) over the guidance scales (and per
    sampler unless `per_sampler` is False), sorted by width, sampler, steps."""
    groups: dict[tuple, list[Result]] = {}
    for r in results:
        key = (r.width, r.sampler if per_sampler else "", r.steps)
        groups.setdefault(key, []).append(r)
    out = []
    for key in sorted(groups):
        r = min(groups[key], key=lambda r: _rank(r, cost))
        out.append(_point(r, _cost(r, cost), cost))
    return out


def summarize(
    results: Iterable[Result],
    sizes_done: int,
    sizes_total: int,
    fid_metric: str | None = None,
    *,
    budgets: Sequence[float] | None = None,
    cost: CostKind = "paper",
) -> Summary:
    """The status summary: progress, best FID overall, the frontier and the Pareto front."""
    results = list(results)
    metric = pick_fid_metric(results, fid_metric)
    summary = Summary(
        sizes_done=sizes_done, sizes_total=sizes_total, progress=f"{sizes_done}/{sizes_total}",
        fid_metric=metric,
    )
    if metric is None:
        return summary
    chosen = fid_results(results, metric)
    if not chosen:
        return summary
    best = min(chosen, key=lambda r: _rank(r, cost))
    summary.best_fid = best.value
    summary.best_width = best.width
    summary.frontier = frontier(chosen, budgets, cost)
    summary.pareto = pareto(chosen, cost)
    return summary


def frontier_rows(summary: Summary) -> list[list[str]]:
    """The frontier as table rows (budget, size, sampler, steps, guidance, cost, FID), with
    consecutive budgets that pick the same setting merged into one row. `ladder status` and the
    report both print it, so they always agree."""
    rows: list[list[str]] = []
    last = None
    for p in summary.frontier:
        key = (p.width, p.sampler, p.steps, p.guidance)
        if key == last:
            continue
        last = key
        rows.append([f"{p.budget:.4g}", f"c{p.width}", p.sampler, str(p.steps), f"{p.guidance:g}",
                     f"{p.cost:.4g}", f"{p.fid:.3f}"])
    return rows
