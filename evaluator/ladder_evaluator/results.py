"""Where Result entries go: the run's results folder outside a cluster, the experiment's /status
inside one.

Both stores have the same semantics: `existing()` tells the evaluator which measurements to skip,
`write(results)` records entries by id and never duplicates one. The folder store is
ladder_api.artifacts.ResultsStore (one write-once object per write, local or gs://, merged by id
on read, so several evaluators may write at once); the cluster store is in `status_store`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ladder_api.status import Result


class ResultStore(Protocol):
    def existing(self) -> dict[str, Result]: ...

    def write(self, results: Iterable[Result]) -> None: ...
