"""`ladder report DIR`: report.md and a self-contained report.html from a run directory.

Reads only files (status.json, the run configs, each size's metrics.jsonl, results.json and
sample files), never JAX or torch, so it runs anywhere matplotlib does.
"""

from __future__ import annotations

from pathlib import Path

from ladder_report.load import load
from ladder_report.render import ReportPaths, write

__all__ = ["ReportPaths", "write_report"]


def write_report(run_dir: str | Path) -> ReportPaths:
    return write(load(run_dir))
