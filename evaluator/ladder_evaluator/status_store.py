"""Results into the ScalingExperiment's status (in a cluster), through ladder_kube's StatusWriter.

Each evaluator process applies only the results it measured, under its own field manager
`ladder-evaluator-c<width>-<random>` (ladder_kube.status explains why a manager per process: a
restarted pod and the old one in its grace period can then never delete each other's entries).
What earlier pods wrote stays theirs; `existing()` reads it so that it is not measured again.

An API server that is away for a while (a restart, an upgrade) is waited out: every read and
write is retried with bounded backoff (RETRY); past that the transient ApiError reaches main,
which exits RESTARTABLE so the JobSet restarts the evaluation instead of failing the size.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ladder_api.errors import UserError
from ladder_api.plan import CODE_VERSION
from ladder_api.status import Result
from ladder_kube.errors import ApiError
from ladder_kube.retry import Backoff
from ladder_kube.status import StatusWriter

RETRY = Backoff(first_s=0.5, max_s=30.0, budget_s=180.0)
USER_AGENT = f"ladder-evaluator/{CODE_VERSION}"


def manager_base(width: int) -> str:
    return f"ladder-evaluator-c{width}"


class StatusStore:
    """The ResultStore of a cluster run: `existing()` from the status, `write()` by apply."""

    def __init__(self, client, namespace: str, name: str, width: int, *, backoff: Backoff | None = None,
                 incarnation: str | None = None, sleep=time.sleep):
        self.writer = StatusWriter(client, namespace, name, manager_base(width),
                                   backoff=RETRY if backoff is None else backoff,
                                   incarnation=incarnation, sleep=sleep)
        self.width = width

    @property
    def manager(self) -> str:
        return self.writer.manager

    def existing(self) -> dict[str, Result]:
        obj = self._gone_is_user_error(self.writer.read)
        out = {}
        for item in (obj.get("status") or {}).get("results") or []:
            try:
                r = Result.model_validate(item)
            except ValueError:
                continue
            out[r.id] = r
        return out

    def write(self, results: Iterable[Result]) -> None:
        fragment = {"results": [r.in_status().to_wire() for r in results]}
        self._gone_is_user_error(lambda: self.writer.apply(fragment))

    def _gone_is_user_error(self, fn):
        try:
            return fn()
        except ApiError as err:
            if err.status == 404:
                w = self.writer
                raise UserError(
                    f"ScalingExperiment {w.namespace}/{w.name} not found: the evaluator writes into an "
                    "existing experiment's status (was it deleted?)"
                ) from None
            raise


def from_environment(namespace: str, name: str, width: int) -> StatusStore:
    """Credentials as kubectl resolves them (the pod's service account in a cluster)."""
    from ladder_kube.client import Client
    from ladder_kube.credentials import load_credentials

    return StatusStore(Client(load_credentials(), user_agent=USER_AGENT), namespace, name, width)
