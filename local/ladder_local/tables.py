"""Text tables of a status: `ladder status DIR` (kubectl-get style) and the rows of the live view.
Pure: they take a status (and a few numbers the status does not hold) and return strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ladder_api.frontier import frontier_rows
from ladder_api.status import ScalingExperimentStatus, SizeStatus

DASH = "-"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by three spaces, as kubectl prints them."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [list(headers), *rows]]
    return "\n".join(lines)


def _num(value: float | None, fmt: str) -> str:
    return DASH if value is None else format(value, fmt)


def _progress(size: SizeStatus) -> str:
    if size.step is None:
        return f"0/{size.total_steps}" if size.total_steps else DASH
    return f"{size.step}/{size.total_steps}" if size.total_steps else str(size.step)


EXPERIMENT_HEADERS = ("NAME", "PHASE", "SIZES", "BEST-FID", "BEST-WIDTH", "FID-METRIC", "MESSAGE")


def experiment_row(name: str, status: ScalingExperimentStatus, note: str | None = None) -> list[str]:
    s = status.summary
    message = status.message or ""
    if note:
        message = f"{message} ({note})" if message else note
    return [
        name,
        status.phase.value,
        s.progress,
        _num(s.best_fid, ".3f"),
        DASH if s.best_width is None else f"c{s.best_width}",
        s.fid_metric or DASH,
        message,
    ]


SIZE_HEADERS = ("WIDTH", "PHASE", "STEP", "LOSS", "EX/S", "CHECKPOINT", "EVAL", "MESSAGE")


def size_rows(
    status: ScalingExperimentStatus,
    expected: Mapping[int, int],
    examples_per_s: Mapping[int, float | None] | None = None,
) -> list[list[str]]:
    """One row per size. EVAL is measurements recorded / expected for that size (the digest's
    counts; `expected` overrides the count where the caller knows better, e.g. the checkpoints
    actually kept)."""
    rows = []
    for size in status.sizes:
        m = size.measurements
        exp = expected.get(size.width) or (m.expected if m else None)
        got = m.recorded if m else 0
        failed = f" ({m.failed} failed)" if m and m.failed else ""
        speed = (examples_per_s or {}).get(size.width)
        rows.append([
            f"c{size.width}",
            size.phase.value,
            _progress(size),
            _num(size.loss, ".4f"),
            _num(speed, ".1f"),
            DASH if size.checkpoint_step is None else str(size.checkpoint_step),
            (f"{got}/{exp}" if exp else str(got)) + failed,
            size.message or "",
        ])
    return rows


FRONTIER_HEADERS = ("BUDGET", "WIDTH", "SAMPLER", "STEPS", "GUIDANCE", "COST", "FID [CI]", "DECISION",
                    "TIED SETTINGS")


def _view(sampler: str | None) -> str:
    return "all samplers pooled" if sampler in (None, "pooled") else f"{sampler} only"


def render_status(
    name: str,
    status: ScalingExperimentStatus,
    expected: Mapping[int, int],
    *,
    note: str | None = None,
    frontier: bool = True,
    examples_per_s: Mapping[int, float | None] | None = None,
) -> str:
    parts = [
        format_table(EXPERIMENT_HEADERS, [experiment_row(name, status, note)]),
        "",
        format_table(SIZE_HEADERS, size_rows(status, expected, examples_per_s)),
    ]
    if frontier and status.summary.frontier:
        parts += [
            "",
            f"Frontier ({_view(status.summary.frontier_sampler)}): best size per sampling budget by "
            f"{status.summary.fid_metric} (cost = normalized model cost x sampling steps)",
            format_table(FRONTIER_HEADERS, frontier_rows(status.summary)),
        ]
    if frontier and status.summary.predictions:
        parts += ["", "PREDICTED, not measured (a power law fitted over the finished sizes):"]
        parts += [f"  {line}" for line in status.summary.predictions]
    return "\n".join(parts)
