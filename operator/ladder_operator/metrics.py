"""Prometheus metrics of the operator (served by `ladder operator --metrics-port`, on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EXPERIMENTS = Gauge("ladder_experiments", "ScalingExperiments by phase.", ["phase"])
RECONCILE_SECONDS = Histogram(
    "ladder_reconcile_duration_seconds",
    "Time of one reconcile of one experiment, API calls included.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILES = Counter("ladder_reconciles_total", "Reconciles run, by result.", ["result"])
API_ERRORS = Counter(
    "ladder_api_errors_total",
    "Kubernetes API errors (other than 404/409), by verb and HTTP code (0: no answer).",
    ["verb", "code"],
)
LEADER = Gauge(
    "ladder_operator_leader", "1 while this process holds the leader Lease and acts, 0 while it stands by."
)
WRITES = Counter(
    "ladder_api_writes_total", "Kubernetes API writes the operator made, by kind of write.", ["action"]
)


def count_api_error(err) -> None:
    """ladder_kube.client.Client's on_error hook. 404 and 409 are answers the operator expects
    (gone, already exists, stale version) and handles; they are not errors of the API."""
    if err.status not in (404, 409):
        API_ERRORS.labels(verb=err.verb, code=str(err.status)).inc()
