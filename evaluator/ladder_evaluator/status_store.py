"""The evaluator's store in a cluster: results of record in storage, progress in the status.

Results go where they go outside a cluster, the experiment's storage (run.paths.results under
storage.outputUri: one write-once object per write, ladder_api.artifacts), never into the
status: the paper's grid is 3,168 results (five times that with every checkpoint), which would
take the object past etcd's 1.5 MiB limit and send megabytes to every watcher on each write.

After a write, the evaluator reports its progress in its size's status entry,
`sizes[width].evaluator` = {recorded, writtenAt}: a few bytes that wake the operator, which then
reads the new result objects and updates the digest (ladder_api.digest). The report goes through
ladder_kube's StatusWriter under a field manager of this process,
`ladder-evaluator-c<width>-w<worker>-<random>` (ladder_kube.status: a restarted pod and the old
one in its grace period never remove each other's fields; each of a size's evaluation workers has
its own base, `manager_base`), at most every `report_every_s` and once more at the end (`flush`).

A report is a wake-up call, not a record: when it fails (API server away longer than its short
retries) the evaluation goes on, since the results are safe in storage and the evaluation
JobSet's completion wakes the operator anyway. Only a deleted experiment (404) stops it, as a user
error. Storage failures are what they are outside a cluster (ladder_api.storage).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from ladder_api.artifacts import ResultsStore
from ladder_api.errors import UserError
from ladder_api.plan import CODE_VERSION, RunConfig
from ladder_api.status import Result
from ladder_kube.errors import ApiError
from ladder_kube.retry import Backoff
from ladder_kube.status import StatusWriter

log = logging.getLogger(__name__)

RETRY = Backoff(first_s=0.5, max_s=5.0, budget_s=20.0)
REPORT_EVERY_S = 10.0
USER_AGENT = f"ladder-evaluator/{CODE_VERSION}"


def manager_base(width: int, worker: int = 0) -> str:
    """The field manager of an evaluator worker, before its incarnation: one per worker of the
    size. The writers of one base are incarnations of one process (a restarted pod): the newest
    wins a field, so an old pod's late report never reverts its replacement's. The workers of a
    size (evaluation.workers) run side by side, so each has its own base and the last report wins
    the size's `evaluator` field, whichever worker started first: under one shared base the
    earlier-started worker's reports were dropped and its results not read until the evaluation
    JobSet changed."""
    return f"ladder-evaluator-c{width}-w{worker}"


def now_rfc3339() -> str:
    """Now in RFC 3339 with microseconds. The operator re-reads a size's results when the report
    it sees changed (ladder_operator.results), so two writers of one size reporting the same
    count must not write the same report: with whole seconds they did within one second, and the
    second writer's results stayed unread until the evaluation JobSet changed."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def progress_fragment(width: int, recorded: int, written_at: str) -> dict:
    """The evaluator's whole share of the status: its size's progress report."""
    report = {"recorded": int(recorded), "writtenAt": written_at}
    return {"sizes": [{"width": int(width), "evaluator": report}]}


class ClusterStore:
    """The ResultStore of a cluster run (see the module docstring)."""

    def __init__(
        self, results: ResultsStore, writer: StatusWriter, width: int, *,
        report_every_s: float = REPORT_EVERY_S, clock: Callable[[], float] = time.monotonic,
        now: Callable[[], str] = now_rfc3339,
    ):
        self.results, self.writer, self.width = results, writer, width
        self.report_every_s, self._clock, self._now = report_every_s, clock, now
        self._ids: set[str] = set()
        self._reported_at = float("-inf")
        self._pending = False
        self._written_at: str | None = None

    @property
    def manager(self) -> str:
        return self.writer.manager

    def existing(self) -> dict[str, Result]:
        found = self.results.existing()
        self._ids |= set(found)
        return found

    def write(self, results: Iterable[Result]) -> None:
        results = list(results)
        self.results.write(results)
        self._ids |= {r.id for r in results}
        self._written_at, self._pending = self._now(), True
        if self._clock() - self._reported_at >= self.report_every_s:
            self.flush()

    def flush(self) -> None:
        """Report the progress now if a write is not reported yet."""
        if not self._pending:
            return
        self._reported_at = self._clock()
        try:
            self.writer.apply(progress_fragment(self.width, len(self._ids), self._written_at or self._now()))
            self._pending = False
        except ApiError as err:
            if err.status == 404:
                w = self.writer
                raise UserError(
                    f"ScalingExperiment {w.namespace}/{w.name} not found: the evaluator reports into an "
                    "existing experiment's status (was it deleted?)"
                ) from None
            log.warning("progress report to the experiment's status failed (%s); results are in storage", err)


def from_environment(run: RunConfig, results: str | None = None, worker: int = 0) -> ClusterStore:
    """Results under `results` (default run.paths.results); the status through credentials as
    kubectl resolves them (the pod's service account in a cluster), as evaluation worker `worker`."""
    from ladder_kube.client import Client
    from ladder_kube.credentials import load_credentials

    exp = run.experiment
    client = Client(load_credentials(), user_agent=USER_AGENT)
    writer = StatusWriter(client, exp.namespace, exp.name, manager_base(run.width, worker),
                         backoff=RETRY)
    return ClusterStore(ResultsStore(results or run.paths.results), writer, run.width)
