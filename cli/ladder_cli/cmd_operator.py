"""`ladder operator`: run the Kubernetes operator (kubeconfig or in-cluster credentials)."""

from __future__ import annotations

import argparse
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
    p.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="act only while holding a Lease, so that a second operator stands by (default: on)",
    )
    p.add_argument("--lease-name", default="ladder-operator", metavar="NAME", help="the Lease's name")
    p.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE") or None,
        metavar="NS",
        help="the Lease's namespace (default: POD_NAMESPACE, else the kubeconfig context's)",
    )
    p.add_argument(
        "--lease-duration",
        type=_lease_duration,
        default=15.0,
        metavar="S",
        help="seconds a standby waits for an unrenewed Lease before it takes over (default: 15)",
    )
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG, ~/.kube/config)")
    p.add_argument("--context", default=None, help="kubeconfig context")
    p.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    p.set_defaults(func=_run)


def _lease_duration(text: str) -> float:
    value = float(text)
    if not 2 <= value <= 600:
        raise argparse.ArgumentTypeError(f"{text}: between 2 and 600 seconds")
    return value


def _run(args) -> int:
    from ladder_operator.leader import LeaseConfig, default_identity
    from ladder_operator.runner import run

    lease = None
    if args.leader_election:
        lease = LeaseConfig(namespace=args.lease_namespace or "", identity=default_identity(),
                            name=args.lease_name, duration_s=args.lease_duration)
    run(
        args.namespace,
        metrics_port=args.metrics_port,
        kubeconfig=args.kubeconfig,
        context=args.context,
        verbose=args.verbose,
        lease=lease,
    )
    return 0
