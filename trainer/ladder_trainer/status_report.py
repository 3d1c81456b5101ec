"""Training progress into the experiment's status.sizes[width] (cluster only).

The fragment is built by a pure function; the trainer owns only the fields it sets (step,
totalSteps, loss, checkpointStep, checkpointUri), so it never fights the operator (phase, jobset,
restarts) over a field, and `sizes` being a list-map keyed by width, its entry merges into the
operator's. It writes through ladder_kube's StatusWriter, under a field manager of its own process
(`ladder-trainer-c<width>-<random>`): a restarted trainer and the old one still in its grace
period never remove each other's fields, and a report that leaves a field out (the final one has
no loss) keeps what an earlier report of this process set.

A report is one attempt, never retried and never fatal: training does not wait on the API
server, and the next report carries everything again.
"""

from __future__ import annotations

import logging
import math
import os

from ladder_api.plan import CODE_VERSION

log = logging.getLogger(__name__)

USER_AGENT = f"ladder-trainer/{CODE_VERSION}"


def manager_base(width: int) -> str:
    return f"ladder-trainer-c{width}"


def size_status_fragment(
    width: int,
    *,
    step: int,
    total_steps: int,
    loss: float | None = None,
    checkpoint_step: int | None = None,
    checkpoint_uri: str | None = None,
) -> dict:
    """The status fragment for one size's training progress (camelCase, as on the wire). A
    non-finite loss (a diverged run) is left out, since JSON and the API server take no NaN;
    metrics.jsonl records it."""
    entry: dict = {"width": int(width), "step": int(step), "totalSteps": int(total_steps)}
    if loss is not None and math.isfinite(loss):
        entry["loss"] = float(loss)
    if checkpoint_step is not None:
        entry["checkpointStep"] = int(checkpoint_step)
        entry["checkpointUri"] = checkpoint_uri
    return {"sizes": [entry]}


def in_cluster(env=os.environ) -> bool:
    return bool(env.get("KUBERNETES_SERVICE_HOST"))


class ClusterReporter:
    """Applies size_status_fragment; a failed report is logged, never fatal to training."""

    def __init__(self, name: str, namespace: str, width: int, client=None, incarnation: str | None = None):
        from ladder_kube.status import StatusWriter

        if client is None:
            from ladder_kube.client import Client
            from ladder_kube.credentials import load_credentials

            client = Client(load_credentials(), user_agent=USER_AGENT)
        self.writer = StatusWriter(client, namespace, name, manager_base(width), incarnation=incarnation)
        self.width = width

    def report(self, **fields) -> bool:
        try:
            self.writer.apply(size_status_fragment(self.width, **fields))
            return True
        except Exception as err:  # noqa: BLE001 - progress reports must not kill a training run
            w = self.writer
            log.warning("status report for %s/%s c%d failed: %s", w.namespace, w.name, self.width, err)
            return False
