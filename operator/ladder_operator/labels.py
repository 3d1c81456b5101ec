"""Labels and annotations on every object an experiment creates.

`ladder.dev/experiment` (+ `ladder.dev/width`) is what the operator selects on; the
`app.kubernetes.io/*` set is the recommended one that dashboards and `kubectl` users expect.
Kueue reads its two labels from the JobSet.
"""

from __future__ import annotations

PART_OF = "ladder"
MANAGED_BY = "ladder-operator"

EXPERIMENT = "ladder.dev/experiment"
WIDTH = "ladder.dev/width"
COMPONENT = "app.kubernetes.io/component"
SPEC_HASH = "ladder.dev/spec-hash"
RECIPE_HASH = "ladder.dev/recipe-hash"

KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY = "kueue.x-k8s.io/priority-class"
EXCLUSIVE_TOPOLOGY = "alpha.jobset.sigs.k8s.io/exclusive-topology"
NODEPOOL_TOPOLOGY_KEY = "cloud.google.com/gke-nodepool"

# Set by JobSet on every pod; the multislice environment is derived from them, as xpk does.
JOBSET_REPLICAS = "jobset.sigs.k8s.io/replicatedjob-replicas"
JOBSET_JOB_INDEX = "jobset.sigs.k8s.io/job-index"
JOBSET_COORDINATOR = "jobset.sigs.k8s.io/coordinator"

# GKE Workload Identity: the Google service account a Kubernetes ServiceAccount acts as.
WORKLOAD_IDENTITY = "iam.gke.io/gcp-service-account"

GKE_TPU_ACCELERATOR = "cloud.google.com/gke-tpu-accelerator"
GKE_TPU_TOPOLOGY = "cloud.google.com/gke-tpu-topology"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"  # the node's machine type
TPU_RESOURCE = "google.com/tpu"


class Component:
    trainer = "trainer"
    evaluator = "evaluator"
    prepare = "prepare"
    run_config = "run-config"
    rbac = "rbac"


def common(experiment: str, component: str, width: int | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": "ladder",
        "app.kubernetes.io/instance": experiment,
        COMPONENT: component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        EXPERIMENT: experiment,
    }
    if width is not None:
        out[WIDTH] = str(width)
    return out


def selector(experiment: str, width: int | None = None, component: str | None = None) -> str:
    """A label selector string for listing an experiment's objects."""
    parts = [f"{EXPERIMENT}={experiment}"]
    if width is not None:
        parts.append(f"{WIDTH}={width}")
    if component is not None:
        parts.append(f"{COMPONENT}={component}")
    return ",".join(parts)
