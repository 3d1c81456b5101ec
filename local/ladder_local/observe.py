"""Read what the trainer and evaluator subprocesses leave in the outputs: checkpoint steps,
metrics lines, results. The files are the only channel between the runner and the pods' code (the
local backend imports no JAX or torch), exactly as in the cluster, where they are objects in a
bucket. They are read through ladder_api.artifacts, so outputs on gs:// are observed alike."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ladder_api import artifacts, storage
from ladder_api.plan import RunConfig
from ladder_api.status import Result


@dataclass
class SizeObservation:
    """Everything the status of one size is built from, as read from its outputs."""

    width: int
    checkpoint_steps: list[int] = field(default_factory=list)
    last_metrics: dict | None = None
    results: list[Result] = field(default_factory=list)


class SizeWatcher:
    """Keeps one size's observation fresh. Cheap to poll: metrics are read from where the last
    poll stopped, results objects once each. Outputs on gs:// are asked at most every
    `remote_every_s` (each look is a few requests) unless a decision needs a fresh look."""

    def __init__(self, run: RunConfig, remote_every_s: float = 5.0):
        self.run = run
        self.metrics = artifacts.MetricsTail(run.paths.metrics)
        self.results = artifacts.ResultsReader(run.paths.results)
        self.every_s = remote_every_s if storage.is_remote(run.paths.root) else 0.0
        self._complete: set[int] = set()
        self._last: SizeObservation | None = None
        self._at = float("-inf")

    def observe(self, fresh: bool = False) -> SizeObservation:
        if not fresh and self._last is not None and time.monotonic() - self._at < self.every_s:
            return self._last
        self.metrics.poll()
        merged = self.results.poll()
        self._last = SizeObservation(
            width=self.run.width,
            checkpoint_steps=artifacts.checkpoint_steps(self.run.paths.checkpoints, self._complete),
            last_metrics=self.metrics.last,
            results=[merged[k] for k in sorted(merged)],
        )
        self._at = time.monotonic()
        return self._last
