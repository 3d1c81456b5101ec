"""The progress views render a snapshot's rows (phase, step/total, loss, examples/s, eval)."""

from __future__ import annotations

import io

from rich.console import Console

from ladder_api.plan import expand
from ladder_api.status import SizePhase
from ladder_local.observe import SizeObservation
from ladder_local.status_build import SizeActivity, build_status
from ladder_local.view import PlainView, RichView, Snapshot
from tests.local.conftest import tiny_experiment


def _snap():
    plan = expand(tiny_experiment(), root="/out")
    obs = {16: SizeObservation(16, [2], {"step": 4, "loss": 0.25, "examples_per_s": 123.4}, [])}
    acts = {8: SizeActivity(SizePhase.succeeded, "16/16 measurements recorded"),
            16: SizeActivity(SizePhase.training)}
    status = build_status(plan, obs, acts, active=True, now="T")
    return Snapshot("tiny", status, {8: 16, 16: 16}, {16: 123.4})


def test_rich_view_draws_one_row_per_size():
    console = Console(file=io.StringIO(), record=True, width=160, force_terminal=False)
    view = RichView(console)
    table = view._render(_snap())
    console.print(table)
    text = console.export_text()
    assert "tiny: Running (1/2 sizes done)" in text
    row16 = next(ln for ln in text.splitlines() if "c16" in ln)
    for cell in ("Training", "4/6", "0.2500", "123.4", "0/16"):
        assert cell in row16
    assert "Succeeded" in next(ln for ln in text.splitlines() if "c8 " in ln)


def test_plain_view_prints_events_and_active_sizes():
    out = io.StringIO()
    view = PlainView(out, every_s=0.0)
    view.start()
    view.event("c8: trained to step 6")
    view.update(_snap())
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("c8: trained to step 6")
    assert lines[1].endswith("c16 Training step 4/6 loss 0.2500 ex/s 123.4 eval 0/16")
    assert len(lines) == 2  # the finished size is not repeated
