"""Predicting the frontier for sizes still training from the sizes that have finished.

The law, fitted separately at each sampling budget B: the best FID a size reaches within B is a
power law of its forward cost G (GFLOPs per U-Net forward),

    log FID_B(G) = a_B + b_B log G + e,   e ~ N(0, s_B^2) independent across sizes,

by ordinary least squares on log-log over the finished sizes that have a setting within B (three at
least: two parameters and one degree of freedom for the scatter). An unfinished size is predicted
only at budgets it can meet (its cheapest setting, normalized cost x fewest steps, fits). Its
prediction interval is Student's t with n - 2 degrees of freedom on the log scale (the fit's
uncertainty plus the scatter of a new size about the law), and its probability of winning a budget
is the t probability that it falls below the best FID measured there.

This is extrapolation of a two-parameter law from a handful of points: the intervals hold when the
law holds. At small budgets, where larger models cannot take enough steps, FID is not monotone in
size and the law does not describe it; a fitted slope b >= 0 says so (larger is predicted worse).
Pure Python: the operator and the report both import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ladder_api.status import Result

MIN_SIZES = 3


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse of t_cdf, by bisection (monotone, so exact to the tolerance)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = -1.0, 1.0
    while t_cdf(lo, df) > p:
        lo *= 2.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2.0


@dataclass(frozen=True)
class PowerLaw:
    """log y = intercept + slope log x, fitted by least squares, with what intervals need."""

    intercept: float
    slope: float
    scatter: float  # residual standard deviation s
    n: int
    x_mean: float  # of log x
    sxx: float  # sum of squared deviations of log x

    @property
    def df(self) -> int:
        return self.n - 2

    def slope_interval(self, confidence: float) -> tuple[float, float]:
        half = t_quantile(0.5 + confidence / 2.0, self.df) * self.scatter / math.sqrt(self.sxx)
        return self.slope - half, self.slope + half

    def intercept_interval(self, confidence: float) -> tuple[float, float]:
        se = self.scatter * math.sqrt(1.0 / self.n + self.x_mean ** 2 / self.sxx)
        half = t_quantile(0.5 + confidence / 2.0, self.df) * se
        return self.intercept - half, self.intercept + half

    def predict_log(self, x: float) -> tuple[float, float]:
        """(mean, standard error of a new observation) of log y at x."""
        lx = math.log(x)
        se = self.scatter * math.sqrt(1.0 + 1.0 / self.n + (lx - self.x_mean) ** 2 / self.sxx)
        return self.intercept + self.slope * lx, se


def fit_power_law(xs: Sequence[float], ys: Sequence[float]) -> PowerLaw:
    if len(xs) != len(ys) or len(xs) < MIN_SIZES:
        raise ValueError(f"need at least {MIN_SIZES} (x, y) pairs, got {len(xs)}")
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    n = len(lx)
    mx, my = sum(lx) / n, sum(ly) / n
    sxx = sum((v - mx) ** 2 for v in lx)
    if sxx == 0.0:
        raise ValueError("all x are equal: no slope to fit")
    slope = sum((u - mx) * (v - my) for u, v in zip(lx, ly, strict=True)) / sxx
    intercept = my - slope * mx
    rss = sum((v - intercept - slope * u) ** 2 for u, v in zip(lx, ly, strict=True))
    return PowerLaw(intercept, slope, math.sqrt(rss / (n - 2)), n, mx, sxx)


@dataclass(frozen=True)
class Unfinished:
    """What is known of a size before it is evaluated: its forward cost and cheapest setting."""

    width: int
    gflops_per_forward: float
    min_cost: float  # normalized cost x fewest sampling steps of the grid


def unfinished_sizes(runs, finished: set[int]) -> list[Unfinished]:
    """The sizes of a plan's runs (ladder_api.plan.RunConfig) not in `finished`."""
    return [Unfinished(r.width, r.model.gflops_per_forward, r.model.normalized_cost * min(r.evaluation.steps))
            for r in runs if r.width not in finished]


@dataclass(frozen=True)
class Prediction:
    budget: float
    width: int
    fid: float
    low: float
    high: float
    win_probability: float  # that it beats the best FID measured within the budget
    best_measured: float
    slope: float
    sizes: int  # finished sizes the law was fitted on


def _best_per_width(results: Sequence[Result], budget: float) -> dict[int, Result]:
    best: dict[int, Result] = {}
    for r in results:
        if r.sampling_cost <= budget * (1 + 1e-12) and (r.width not in best or r.value < best[r.width].value):
            best[r.width] = r
    return best


def predict_frontier(fid_results: Sequence[Result], unfinished: Sequence[Unfinished],
                     budgets: Sequence[float], confidence: float) -> list[Prediction]:
    """For each budget and each unfinished size that can meet it: the law's prediction. The
    results are the finished sizes' FID results of one metric (see frontier.fid_results)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    out = []
    for budget in sorted(budgets):
        best = _best_per_width(fid_results, budget)
        if len(best) < MIN_SIZES or not all(r.value > 0 for r in best.values()):
            continue
        law = fit_power_law([r.gflops_per_forward for r in best.values()], [r.value for r in best.values()])
        q = t_quantile(0.5 + confidence / 2.0, law.df)
        leader = min(r.value for r in best.values())
        for u in unfinished:
            if u.min_cost > budget * (1 + 1e-12):
                continue
            mean, se = law.predict_log(u.gflops_per_forward)
            p = t_cdf((math.log(leader) - mean) / se, law.df) if se > 0 else float(mean < math.log(leader))
            out.append(Prediction(budget, u.width, math.exp(mean), math.exp(mean - q * se),
                                  math.exp(mean + q * se), p, leader, law.slope, law.n))
    return out


def prediction_words(predictions: Sequence[Prediction]) -> list[str]:
    """One sentence per unfinished size: from which budget on it is predicted to win, and how
    likely, or that it is not predicted to win any budget."""
    out = []
    for width in sorted({p.width for p in predictions}):
        mine = [p for p in predictions if p.width == width]
        winning = [p for p in mine if p.win_probability >= 0.5]
        if not winning:
            top = max(mine, key=lambda p: p.win_probability)
            out.append(f"c{width} is not predicted to win any budget (at most p={top.win_probability:.2f}, "
                       f"at budget {top.budget:.4g}).")
            continue
        first = min(winning, key=lambda p: p.budget)
        probs = [p.win_probability for p in winning]
        out.append(f"c{width} is predicted to win budgets from {first.budget:.4g} on, with probability "
                   f"{min(probs):.2f} to {max(probs):.2f} (predicted FID at {first.budget:.4g}: "
                   f"{first.fid:.3g} [{first.low:.3g}, {first.high:.3g}]).")
    return out
