"""Where Result entries go: always the run's results folder (local or gs://); in a cluster the
store also reports progress in the experiment's status.

Both stores have the same semantics: `existing()` tells the evaluator which measurements to skip,
`write(results)` records entries by id and never duplicates one, `flush()` finishes what a write
left pending. The folder store is ladder_api.artifacts.ResultsStore (one write-once object per
write, local or gs://, merged by id on read, so several evaluators may write at once); the
cluster store (`status_store`) writes through it and reports progress after.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ladder_api.status import Result


class ResultStore(Protocol):
    def existing(self) -> dict[str, Result]: ...

    def write(self, results: Iterable[Result]) -> None: ...

    def flush(self) -> None: ...
