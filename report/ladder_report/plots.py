"""The report's figures, drawn with matplotlib (Agg, no display) and returned as PNG bytes.

Each function takes plain data (metrics records, Results, FrontierPoints, arrays) so it can be
exercised on made-up inputs in tests; the report feeds them only recorded measurements.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ladder_api.status import FrontierPoint, Result  # noqa: E402
from ladder_report.labels import label  # noqa: E402

LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _log_x(ax) -> None:
    """Log-scale x with plain numbers and no crowded minor labels (costs span ~1e-3..1e2)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _colors(widths: Sequence[int]) -> dict[int, tuple]:
    cmap = plt.get_cmap("viridis")
    ws = sorted(widths)
    n = max(1, len(ws) - 1)
    return {w: cmap(0.1 + 0.8 * i / n) for i, w in enumerate(ws)}


def loss_curves(metrics: Mapping[int, Sequence[Mapping]], smooth: int = 5) -> bytes | None:
    """Training loss against step per size (a running mean over `smooth` logged points on top of
    the raw points)."""
    series = {}
    for w, recs in metrics.items():
        pts = [(r["step"], r["loss"]) for r in recs
               if isinstance(r.get("step"), int | float) and isinstance(r.get("loss"), int | float)]
        if pts:
            # a resumed run may log a step twice; keep the latest record of each step
            series[w] = sorted(dict(pts).items())
    if not series:
        return None
    colors = _colors(list(series))
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for w, pts in sorted(series.items()):
        steps = np.array([p[0] for p in pts], dtype=float)
        loss = np.array([p[1] for p in pts], dtype=float)
        ax.plot(steps, loss, color=colors[w], alpha=0.25, linewidth=0.8)
        # trailing mean over up to `smooth` points, so the curve starts at the first logged step
        smoothed = np.array([loss[max(0, i - smooth + 1): i + 1].mean() for i in range(len(loss))])
        ax.plot(steps, smoothed, color=colors[w], label=f"c{w}", linewidth=1.8)
    ax.set_xlabel("training step")
    ax.set_ylabel("diffusion loss (MSE of the prediction)")
    ax.set_title("Training loss per size")
    ax.legend(title="size")
    ax.grid(alpha=0.3)
    return _png(fig)


def fid_vs_cost(points: Sequence[FrontierPoint], fid_metric: str) -> bytes | None:
    """The paper's Figure 9 view: FID against sampling cost, one curve per size and sampler, each
    point a step count (best FID over guidance scales at that step count), with its interval."""
    if not points:
        return None
    widths = sorted({p.width for p in points})
    samplers = sorted({p.sampler for p in points})
    colors = _colors(widths)
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    for w in widths:
        for i, s in enumerate(samplers):
            pts = sorted((p.cost, p.fid, p.steps) for p in points if p.width == w and p.sampler == s)
            if not pts:
                continue
            xs, ys, steps = zip(*pts, strict=True)
            ax.plot(xs, ys, LINESTYLES[i % len(LINESTYLES)], marker=MARKERS[i % len(MARKERS)],
                    color=colors[w], label=f"c{w} {s}")
            bars = [(p.cost, p.fid_low, p.fid_high) for p in points
                    if p.width == w and p.sampler == s and p.fid_low is not None and p.fid_high is not None]
            if bars:  # the confidence interval of each point
                bx, lo, hi = zip(*bars, strict=True)
                ax.vlines(bx, lo, hi, color=colors[w], alpha=0.6, linewidth=1.2)
            for x, y, n in pts:
                ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7,
                            color=colors[w])
    _log_x(ax)
    ax.set_xlabel("sampling cost (normalized model cost x steps)")
    ax.set_ylabel(label(fid_metric).short)
    ax.set_title("FID against sampling cost (labels: sampling steps)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    return _png(fig)


def frontier_plot(
    all_points: Sequence[Result], frontier: Sequence[FrontierPoint], fid_metric: str
) -> bytes | None:
    """Every measurement as a dot, coloured by size; the frontier as a step line whose segments
    take the colour of the size that wins that budget."""
    if not frontier:
        return None
    widths = sorted({r.width for r in all_points} | {p.width for p in frontier})
    colors = _colors(widths)
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    for w in widths:
        pts = [(r.sampling_cost, r.value) for r in all_points if r.width == w]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.scatter(xs, ys, s=12, color=colors[w], alpha=0.35, label=f"c{w} (all settings)")
    fr = sorted(frontier, key=lambda p: p.budget)
    for a, b in zip(fr, fr[1:] + [None], strict=True):
        x_end = b.budget if b is not None else a.budget * 1.15
        ax.plot([a.budget, x_end], [a.fid, a.fid], color=colors[a.width], linewidth=2.5)
        if b is not None:
            ax.plot([b.budget, b.budget], [a.fid, b.fid], color="grey", linewidth=0.8)
    for w in sorted({p.width for p in fr}):
        ax.plot([], [], color=colors[w], linewidth=2.5, label=f"frontier: c{w} wins")
    _log_x(ax)
    ax.set_xlabel("sampling budget (normalized model cost x steps)")
    ax.set_ylabel(f"best {label(fid_metric).short} within budget")
    ax.set_title("Sampling-efficiency frontier: best size per budget")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _png(fig)


def guidance_sweep(results: Sequence[Result], metrics: Sequence[str]) -> bytes | None:
    """One panel per metric: the metric against guidance scale, per size and sampler, at the
    largest step count evaluated."""
    metrics = [m for m in metrics if any(r.metric == m for r in results)]
    if not metrics:
        return None
    widths = sorted({r.width for r in results})
    colors = _colors(widths)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        mine = [r for r in results if r.metric == metric]
        samplers = sorted({r.sampler for r in mine})
        for w in widths:
            for i, s in enumerate(samplers):
                rs = [r for r in mine if r.width == w and r.sampler == s]
                if not rs:
                    continue
                steps = max(r.steps for r in rs)
                pts = sorted((r.guidance, r.value) for r in rs if r.steps == steps)
                xs, ys = zip(*pts, strict=True)
                scale = 100.0 if label(metric).percent else 1.0
                ax.plot(xs, [y * scale for y in ys], LINESTYLES[i % len(LINESTYLES)],
                        marker=MARKERS[i % len(MARKERS)], color=colors[w], label=f"c{w} {s} ({steps} steps)")
        if metric == "adherence":
            ax.axhline(10.0, color="red", linewidth=0.8, linestyle=":", label="chance (10%)")
        ax.set_xlabel("classifier-free guidance scale")
        ax.set_ylabel(label(metric).short + (" (%)" if label(metric).percent else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Guidance sweeps")
    return _png(fig)


def sample_grid(rows: Sequence[tuple[str, np.ndarray, np.ndarray | None]], per_row: int = 10) -> bytes | None:
    """A grid of generated images: one row per (caption, images [N,H,W,C] in [0,1], labels).
    With labels, the row shows one image per prompted digit 0..9 where available."""
    rows = [r for r in rows if len(r[1])]
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), per_row, figsize=(per_row * 0.8, len(rows) * 0.95 + 0.4),
                             squeeze=False)
    for (caption, images, labels), ax_row in zip(rows, axes, strict=True):
        picks = _pick(images, labels, per_row)
        for j, ax in enumerate(ax_row):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(picks):
                idx, title = picks[j]
                img = images[idx]
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray_r" if img.shape[-1] == 1
                          else None, vmin=0.0, vmax=1.0, interpolation="nearest")
                if title is not None:
                    ax.set_title(title, fontsize=7, pad=2)
        ax_row[0].set_ylabel(caption, rotation=0, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.35)
    return _png(fig)


def _pick(images: np.ndarray, labels: np.ndarray | None, n: int) -> list[tuple[int, str | None]]:
    if labels is None:
        return [(i, None) for i in range(min(n, len(images)))]
    out = []
    for digit in range(10):
        hits = np.nonzero(np.asarray(labels) == digit)[0]
        if len(hits):
            out.append((int(hits[0]), f'"{digit}"'))
    return out[:n]
