"""Progress display for `ladder run`: a live rich table on a terminal, plain lines otherwise
(CI logs, pipes). The view only renders snapshots; it never decides anything."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Protocol

from ladder_api.status import ScalingExperimentStatus
from ladder_local.tables import SIZE_HEADERS, experiment_row, size_rows


@dataclass
class Snapshot:
    name: str
    status: ScalingExperimentStatus
    expected: dict[int, int] = field(default_factory=dict)
    examples_per_s: dict[int, float | None] = field(default_factory=dict)


class View(Protocol):
    def start(self) -> None: ...
    def update(self, snap: Snapshot) -> None: ...
    def event(self, text: str) -> None: ...
    def stop(self) -> None: ...


class NullView:
    def start(self) -> None:
        pass

    def update(self, snap: Snapshot) -> None:
        pass

    def event(self, text: str) -> None:
        pass

    def stop(self) -> None:
        pass


class PlainView:
    """Events as they happen, and one line per size every `every_s` seconds."""

    def __init__(self, stream=None, every_s: float = 20.0):
        self.stream = stream or sys.stdout
        self.every_s = every_s
        self._last = 0.0

    def _print(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.stream, flush=True)

    def start(self) -> None:
        self._last = time.monotonic()

    def update(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        for row in size_rows(snap.status, snap.expected, snap.examples_per_s):
            cells = dict(zip(SIZE_HEADERS, row, strict=True))
            if cells["PHASE"] in ("Training", "Evaluating"):
                self._print(f"{cells['WIDTH']} {cells['PHASE']} step {cells['STEP']} loss {cells['LOSS']} "
                            f"ex/s {cells['EX/S']} eval {cells['EVAL']}")

    def event(self, text: str) -> None:
        self._print(text)

    def stop(self) -> None:
        pass


class RichView:
    """A live table with one row per size, redrawn in place; events scroll above it."""

    def __init__(self, console=None):
        from rich.console import Console

        self.console = console or Console()
        self._live = None

    def _render(self, snap: Snapshot | None):
        from rich.table import Table

        table = Table(expand=False, title=None if snap is None else self._title(snap))
        for h in SIZE_HEADERS:
            table.add_column(h, no_wrap=True, overflow="ellipsis", max_width=48 if h == "MESSAGE" else None)
        if snap is not None:
            for row in size_rows(snap.status, snap.expected, snap.examples_per_s):
                style = {"Training": "cyan", "Evaluating": "magenta", "Succeeded": "green",
                         "Failed": "red", "Suspended": "yellow"}.get(row[1])
                table.add_row(*row, style=style)
        return table

    @staticmethod
    def _title(snap: Snapshot) -> str:
        row = experiment_row(snap.name, snap.status)
        best = f", best {row[5]} {row[3]} at {row[4]}" if row[3] != "-" else ""
        return f"{snap.name}: {row[1]} ({row[2]} sizes done{best})"

    def start(self) -> None:
        from rich.live import Live

        self._live = Live(self._render(None), console=self.console, refresh_per_second=4, transient=False)
        self._live.start()

    def update(self, snap: Snapshot) -> None:
        if self._live is not None:
            self._live.update(self._render(snap))

    def event(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text.assemble((time.strftime("%H:%M:%S"), "dim"), " ", text), highlight=False)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def default_view() -> View:
    return RichView() if sys.stdout.isatty() else PlainView()
