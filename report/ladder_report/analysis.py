"""The report's tables and headline numbers: pure functions of configs, metrics and results.

Every table is a `Table` (title, headers, rows, note) so the Markdown and HTML renderers print
the same content. Numbers are only ever taken from recorded results; nothing here invents one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ladder_api.frontier import best_over_guidance, fid_results, frontier_rows, pick_fid_metric, summarize
from ladder_api.ladder import format_params
from ladder_api.plan import RunConfig
from ladder_api.predict import predict_frontier, prediction_words, unfinished_sizes
from ladder_api.spec import POOLED
from ladder_api.status import Result, Summary
from ladder_report.labels import format_interval, format_value, label

ADHERENCE = "adherence"
CHANCE = 0.10


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Headline:
    """The largest size's prompt adherence, stated plainly, and the setting it was measured at."""

    width: int
    best: float
    best_setting: str
    mean: float
    n_settings: int
    num_samples: int
    interval: tuple[float, float] | None = None  # the best setting's confidence interval
    confidence: float | None = None

    def sentence(self) -> str:
        # with an interval, "above chance" is said of its lower end, not of the point estimate
        low = self.best if self.interval is None else self.interval[0]
        verdict = "not above" if self.interval is None else "not distinguishable from"
        if low > CHANCE:
            verdict = "well above" if low >= 3 * CHANCE else "above"
        ci = ""
        if self.interval is not None:
            level = f"{self.confidence:.0%} " if self.confidence else ""
            ci = f" ({level}interval {100 * self.interval[0]:.1f}% to {100 * self.interval[1]:.1f}%)"
        return (
            f"The largest size (c{self.width}) reaches a prompt adherence of {100 * self.best:.1f}%{ci} "
            f"({self.best_setting}; {self.num_samples} samples), {verdict} chance ({100 * CHANCE:.0f}%); "
            f"averaged over all {self.n_settings} sampling settings it is {100 * self.mean:.1f}%."
        )


def final_loss(records: Sequence[Mapping]) -> float | None:
    """Mean loss of the last few logged steps (one logged step is noisy)."""
    losses = [float(r["loss"]) for r in records if isinstance(r.get("loss"), int | float)]
    if not losses:
        return None
    tail = losses[-3:]
    return sum(tail) / len(tail)


def ladder_table(runs: Sequence[RunConfig], metrics: Mapping[int, Sequence[Mapping]]) -> Table:
    rows = []
    for run in sorted(runs, key=lambda r: r.width):
        m = run.model
        recs = metrics.get(run.width, [])
        steps = [int(r["step"]) for r in recs if isinstance(r.get("step"), int | float)]
        last_step = max(steps, default=None)
        loss = final_loss(recs)
        rows.append([
            f"c{run.width}",
            f"{m.params:,} ({format_params(m.params)})" if m.params >= 1e6 else f"{m.params:,}",
            f"{m.gflops_per_forward:.4g}",
            f"{m.normalized_cost:.4g}",
            f"{last_step if last_step is not None else '-'}/{run.training.steps}",
            "-" if loss is None else f"{loss:.4f}",
        ])
    return Table(
        "The ladder",
        ["c", "parameters", "GFLOPs / forward", "normalized cost", "steps trained", "final loss"],
        rows,
        "Parameters and GFLOPs are the analytic counts of the U-Net that was trained (text encoder and "
        "autoencoder excluded); normalized cost is one forward pass relative to the c = 320 model with the "
        "same settings, the paper's cost unit. Final loss: mean of the last three logged training losses.",
    )


def metrics_present(results: Sequence[Result]) -> list[str]:
    return sorted({r.metric for r in results})


def newest_only(results: Sequence[Result]) -> list[Result]:
    newest: dict[int, int] = {}
    for r in results:
        newest[r.width] = max(newest.get(r.width, r.checkpoint_step), r.checkpoint_step)
    return [r for r in results if r.checkpoint_step == newest[r.width]]


def confidence_of(results: Sequence[Result]) -> float:
    """The confidence level the results were measured at (the spec's; 0.95 for older results)."""
    return next((r.confidence for r in results if r.confidence is not None), 0.95)


def summary_of(results: Sequence[Result], sizes_total: int, evaluation=None, *,
               cost: str = "paper", all_views: bool = False) -> Summary:
    """The summary as the status has it: the views and guidance scales of `evaluation` (the
    headline first); all_views adds every evaluated sampler and the pooled view (Figure 11)."""
    widths = {r.width for r in results}
    if evaluation is None:
        return summarize(results, len(widths), sizes_total, cost=cost, confidence=confidence_of(results),
                         max_points=None)  # the whole front
    views = evaluation.frontier_views()
    if all_views:
        views += [str(s) for s in evaluation.samplers if str(s) not in views]
        views += [POOLED] if POOLED not in views else []
    return summarize(results, len(widths), sizes_total, cost=cost, views=views,
                     guidance=evaluation.best_of_guidance_scales(), confidence=confidence_of(results),
                     max_points=None)


def summary_with_guidance_cost(results: Sequence[Result], sizes_total: int, evaluation=None) -> Summary:
    """The same frontier when classifier-free guidance's second forward pass is counted."""
    return summary_of(results, sizes_total, evaluation, cost="with_guidance")


def view_label(view: str | None) -> str:
    if view in (None, POOLED):
        return "all samplers pooled"
    return f"{view} only"


def frontier_table(summary: Summary, *, with_guidance: bool = False, view=None) -> Table:
    """The headline frontier, or one view's (a FrontierView of summary.views)."""
    rows = frontier_rows(summary, None if view is None else view.frontier, max_listed=None)
    name = view.sampler if view is not None else summary.frontier_sampler
    metric = summary.fid_metric or "fid"
    scales = ", ".join(f"{g:g}" for g in summary.best_of_guidance) or "all evaluated"
    if with_guidance:
        return Table(
            f"The frontier ({view_label(name)}), counting guidance's second forward pass",
            ["budget ≤", "best size", "sampler", "steps", "guidance", "cost with guidance",
             f"{label(metric).short} [CI]", "decision", "settings not distinguishable from it"],
            rows,
            "The same question with cost = normalized model cost x steps x forwards per step (2 when "
            "guidance needs the unconditional pass too): the paper does not say which convention it used.",
        )
    return Table(
        f"The frontier ({view_label(name)}): best size per sampling budget",
        ["budget ≤", "best size", "sampler", "steps", "guidance", "cost", f"{label(metric).short} [CI]",
         "decision", "settings not distinguishable from it"],
        rows,
        f"For each sampling budget (normalized model cost x sampling steps, the paper's cost; guidance's "
        f"second forward pass not counted), the setting with the lowest {label(metric).short} among all "
        f"sizes, step counts and guidance scales ({scales}) of {view_label(name)} whose cost fits. A row "
        "holds until the next budget at which the winner changes. [CI] is the bootstrap interval at the "
        "experiment's confidence level; a size wins a budget only when the paired bootstrap of its FID "
        "difference with every other size's best setting there excludes 0, else the sizes it cannot "
        "be told apart from are listed as a tie; p is the share of resamples in which it is best. The "
        "last column lists every setting within the budget (any size, the winner's included) whose "
        "paired FID difference with the winning setting does not exclude 0 at that level.",
    )


def pareto_table(summary: Summary) -> Table:
    metric = summary.fid_metric or "fid"
    rows = [[f"{p.cost:.4g}", f"c{p.width}", p.sampler, str(p.steps), f"{p.guidance:g}", f"{p.fid:.3f}"]
            for p in summary.pareto]
    return Table(f"Pareto front of sampling cost against FID ({view_label(summary.frontier_sampler)})",
                 ["cost", "size", "sampler", "steps", "guidance", label(metric).short], rows,
                 "Settings that no other setting beats on both cost and FID.")


def _by_setting(results: Sequence[Result]) -> dict[tuple, dict[str, Result]]:
    out: dict[tuple, dict[str, Result]] = {}
    for r in results:
        out.setdefault((r.width, r.sampler, r.steps, r.guidance), {})[r.metric] = r
    return out


def failed_table(failed: Sequence[Result]) -> Table:
    """The measurements that failed (e.g. the metric came out NaN), each with its reason."""
    rows = [[f"c{r.width}", str(r.checkpoint_step), r.sampler, str(r.steps), f"{r.guidance:g}", r.metric,
             r.error or ""] for r in sorted(failed, key=lambda r: r.id)]
    return Table(
        "Failed measurements",
        ["size", "checkpoint", "sampler", "steps", "guidance", "metric", "why"],
        rows,
        "Recorded as failed rather than as a number, and left out of every table, plot and frontier "
        "above; `python -m ladder_evaluator ... --force` measures them again.",
    )


def results_table(results: Sequence[Result]) -> Table:
    """Every measurement of the newest checkpoint of each size, one row per sampling setting."""
    chosen = newest_only(results)
    metrics = metrics_present(chosen)
    rows = []
    for key, per_metric in sorted(_by_setting(chosen).items()):
        width, sampler, steps, guidance = key
        any_r = next(iter(per_metric.values()))
        rows.append(
            [f"c{width}", str(any_r.checkpoint_step), sampler, str(steps), f"{guidance:g}",
             f"{any_r.sampling_cost:.4g}", f"{any_r.sampling_cost_with_guidance:.4g}"]
            + [format_interval(per_metric[m]) if m in per_metric else "-" for m in metrics]
        )
    return Table(
        "All measurements",
        ["size", "checkpoint", "sampler", "steps", "guidance", "cost", "cost with guidance"]
        + [label(m).short for m in metrics],
        rows,
        "cost = normalized model cost x steps (the paper's); cost with guidance also counts the "
        "unconditional forward pass classifier-free guidance needs (x2 for guidance not in {0, 1}). "
        "Brackets: the confidence interval (FID: bootstrap percentile over the samples; adherence: "
        "Wilson; CLIP score: normal).",
    )


def best_per_size_table(results: Sequence[Result], fid_metric: str) -> Table:
    chosen = fid_results(results, fid_metric)
    by_setting = _by_setting(newest_only(results))
    rows = []
    for width in sorted({r.width for r in chosen}):
        mine = [r for r in chosen if r.width == width]
        best = min(mine, key=lambda r: (r.value, r.sampling_cost))
        adh = by_setting.get((width, best.sampler, best.steps, best.guidance), {}).get(ADHERENCE)
        rows.append([f"c{width}", format_interval(best), best.sampler, str(best.steps), f"{best.guidance:g}",
                     f"{best.sampling_cost:.4g}", "-" if adh is None else format_value(ADHERENCE, adh.value)])
    return Table(f"Best {label(fid_metric).short} per size",
                 ["size", label(fid_metric).short, "sampler", "steps", "guidance", "cost",
                  "adherence at that setting"], rows,
                 "The lowest FID each size reached over the whole sampling grid, and where.")


def guidance_sweep_table(results: Sequence[Result], metric: str) -> Table:
    """Metric against guidance scale for each size and sampler at its largest step count."""
    chosen = [r for r in newest_only(results) if r.metric == metric]
    scales = sorted({r.guidance for r in chosen})
    rows = []
    for width in sorted({r.width for r in chosen}):
        for sampler in sorted({r.sampler for r in chosen if r.width == width}):
            mine = [r for r in chosen if r.width == width and r.sampler == sampler]
            steps = max(r.steps for r in mine)
            at = {r.guidance: r for r in mine if r.steps == steps}
            rows.append([f"c{width}", sampler, str(steps)]
                        + [format_value(metric, at[g].value) if g in at else "-" for g in scales])
    return Table(f"Guidance sweep: {label(metric).short}",
                 ["size", "sampler", "steps"] + [f"g={g:g}" for g in scales], rows,
                 "At each size's and sampler's largest evaluated step count.")


def adherence_headline(results: Sequence[Result], runs: Sequence[RunConfig]) -> Headline | None:
    chosen = [r for r in newest_only(results) if r.metric == ADHERENCE]
    if not chosen or not runs:
        return None
    largest = max(run.width for run in runs)
    mine = [r for r in chosen if r.width == largest]
    if not mine:
        return None
    best = max(mine, key=lambda r: (r.value, -r.sampling_cost))
    return Headline(
        width=largest,
        best=best.value,
        best_setting=f"{best.sampler}, {best.steps} steps, guidance {best.guidance:g}",
        mean=sum(r.value for r in mine) / len(mine),
        n_settings=len(mine),
        num_samples=best.num_samples,
        interval=None if best.ci_low is None or best.ci_high is None else (best.ci_low, best.ci_high),
        confidence=best.confidence,
    )


@dataclass
class SettingsDigest:
    """The exact settings shared by every measurement, and those that vary."""

    shared: dict[str, str] = field(default_factory=dict)
    varying: dict[str, list[str]] = field(default_factory=dict)


def settings_digest(results: Sequence[Result]) -> SettingsDigest:
    keys = sorted({k for r in results for k in r.settings})
    digest = SettingsDigest()
    for k in keys:
        values = sorted({r.settings.get(k, "(unset)") for r in results})
        if len(values) == 1:
            digest.shared[k] = values[0]
        else:
            digest.varying[k] = values
    return digest


def fid_metric_of(results: Sequence[Result]) -> str | None:
    return pick_fid_metric(results)


def curve_points(results: Sequence[Result], fid_metric: str, guidance=None) -> list:
    """Figure 9's points: best FID over the guidance scales given (all when None) per (size,
    sampler, steps), newest checkpoints."""
    return best_over_guidance(fid_results(results, fid_metric), guidance=guidance)


@dataclass
class EqualCostPick:
    target_cost: float
    sampler: str | None
    guidance: float | None
    picks: list  # [(width, SampleSet, cost)], by width


def equal_cost_samples(samples: Sequence, normalized_cost: Mapping[int, float]) -> EqualCostPick | None:
    """One sample set per size at (as nearly as the grid allows) the same sampling cost.

    The budget is the smallest cost every size can reach (the largest size's cheapest setting,
    usually), so small sizes spend their budget on more steps, as in the paper's comparison.
    Sets sharing one sampler and guidance scale across all sizes are preferred.
    """
    newest: dict[int, int] = {}
    for s in samples:
        newest[s.width] = max(newest.get(s.width, -1), s.checkpoint_step or 0)
    samples = [s for s in samples if (s.checkpoint_step or 0) == newest[s.width]]
    widths = sorted({s.width for s in samples if s.width in normalized_cost})
    if not widths:
        return None

    def cost(s) -> float:
        return normalized_cost[s.width] * s.steps

    pools = [[s for s in samples if s.width in normalized_cost]]
    common = None
    keys: dict[tuple, set[int]] = {}
    for s in pools[0]:
        keys.setdefault((s.sampler, s.guidance), set()).add(s.width)
    full = sorted(k for k, ws in keys.items() if len(ws) == len(widths))
    if full:
        # the most guided common setting: unguided digits are rarely the prompted ones
        common = max(full, key=lambda k: (k[1], k[0]))
        pools.insert(0, [s for s in pools[0] if (s.sampler, s.guidance) == common])
    pool = pools[0]
    target = max(min(cost(s) for s in pool if s.width == w) for w in widths)
    picks = []
    for w in widths:
        mine = [s for s in pool if s.width == w]
        best = min(mine, key=lambda s: (abs(cost(s) - target), s.steps, s.sampler, s.guidance))
        picks.append((w, best, cost(best)))
    return EqualCostPick(target, common[0] if common else None, common[1] if common else None, picks)


def prediction_table(results: Sequence[Result], runs: Sequence[RunConfig], fid_metric: str,
                     confidence: float) -> tuple[Table, list[str]] | None:
    """The predicted frontier for sizes without results, or None when there is nothing to predict
    (every size measured, or fewer than three measured)."""
    chosen = fid_results(results, fid_metric)
    finished = {r.width for r in chosen}
    todo = unfinished_sizes(runs, finished)
    budgets = sorted({r.sampling_cost for r in chosen} | {u.min_cost for u in todo})
    preds = predict_frontier(chosen, todo, budgets, confidence)
    if not preds:
        return None
    rows = [[f"{p.budget:.4g}", f"c{p.width}", f"{p.fid:.3f} [{p.low:.3f}, {p.high:.3f}]",
             f"{p.best_measured:.3f}", f"{p.win_probability:.2f}", f"{p.slope:.3f}", str(p.sizes)]
            for p in preds]
    table = Table(
        "PREDICTED, not measured: the frontier for sizes still training",
        ["budget ≤", "size", f"predicted {label(fid_metric).short} [{confidence:.0%} PI]",
         "best measured", "P(wins)", "law's slope", "sizes fitted"],
        rows,
        "A model, not a measurement: at each budget, log(best FID) = a + b log(GFLOPs per forward) is "
        "fitted by least squares over the finished sizes' best FID within the budget, and extrapolated "
        "to each unfinished size that can meet the budget. PI: Student t prediction interval; P(wins): "
        "the t probability that it beats the best FID measured there. Valid only where the law holds "
        "(a slope >= 0 says larger sizes are not predicted to help at that budget).",
    )
    return table, prediction_words(preds)
