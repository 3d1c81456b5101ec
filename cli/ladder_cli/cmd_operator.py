"""`ladder operator`: run the Kubernetes operator (kubeconfig or in-cluster credentials)."""

from __future__ import annotations

import os


def register(sub) -> None:
    p = sub.add_parser(
        "operator",
        help="run the operator: reconcile ScalingExperiments into JobSets and fill their status",
        description="Watch ScalingExperiments and reconcile them into JobSets. Credentials come from the "
        "in-cluster service account in a pod, else from KUBECONFIG or ~/.kube/config, as kubectl does.",
    )
    p.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="namespace to serve (repeatable); default: all namespaces",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("LADDER_METRICS_PORT", "0")) or None,
        metavar="P",
        help="serve Prometheus metrics on this port (default: off)",
    )
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", default=None, help="kubeconfig context")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from ladder_operator.runner import run

    run(
        args.namespace,
        metrics_port=args.metrics_port,
        kubeconfig=args.kubeconfig,
        context=args.context,
        verbose=args.verbose,
    )
    return 0
