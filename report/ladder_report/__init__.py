"""`ladder report DIR|URI`: report.md and a self-contained report.html from a run directory or an
experiment's storage root.

Reads only files (status.json when there is one, the run configs, each size's metrics.jsonl,
result objects and sample files), never JAX or torch, so it runs anywhere matplotlib does.
"""

from __future__ import annotations

from pathlib import Path

from ladder_report.load import load
from ladder_report.render import ReportPaths, write

__all__ = ["ReportPaths", "write_report"]


def write_report(source: str | Path, out_dir: str | Path | None = None, status=None) -> ReportPaths:
    """The report of a run directory or storage root (see ladder_report.load)."""
    return write(load(source, out_dir, status))
