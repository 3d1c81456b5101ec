#!/usr/bin/env bash
# One-pod-per-host smoke test of a real TPU slice on GKE, with pods locked down exactly as the
# operator renders them (non-root uid 1000, read-only root filesystem, no capabilities, no
# privilege, RuntimeDefault seccomp, no hostNetwork unless asked). docs/tpu.md says what each
# check means and why a training run depends on it.
#
# It CANNOT run in the development environment or CI (no cluster, no TPU): run it by hand against
# a GKE cluster that has a node pool of the slice type, before the first real run and after GKE or
# image upgrades. What runs here is tested without a cluster: the objects it applies come from
# `python -m ladder_operator.smoke` and validate against the Kubernetes schemas
# (tests/operator/test_smoke.py), and this script passes shellcheck.
#
# Usage:
#   LADDER_TEST_KUBECONFIG=~/.kube/gke LADDER_SMOKE_IMAGE=ghcr.io/ladder-dev/ladder-trainer:0.1.0 \
#     hack/tpu-smoke.sh [SLICE]           # SLICE defaults to v5litepod-8 (2 hosts: DCN check too)
# Environment:
#   LADDER_TEST_KUBECONFIG   kubeconfig of the cluster (required)
#   LADDER_SMOKE_IMAGE       the trainer image (required)
#   LADDER_SMOKE_NAMESPACE   namespace (default: default); use the one experiments run in, so its
#                            Pod Security admission level is the one tested
#   LADDER_SMOKE_HOST_NETWORK=1  also run the DCN check with hostNetwork and report the ratio
#                            pod network / host network (needs a namespace that allows it)
#   LADDER_SMOKE_MIN_RATIO   least pod/host bandwidth ratio that passes (default 0.8)
#   LADDER_SMOKE_MIN_GBPS    least pod-network Gbit/s that passes (default 10)
#   LADDER_SMOKE_TIMEOUT     seconds to wait for the pods (default 1200: node scale-up, image pull)
#   PYTHON                   a Python with the repository's dependencies (default: .venv/bin/python
#                            after `make setup`, else python); kubectl must be on PATH
# Exit status: 0 when every check passed, 1 otherwise; the checks' JSON lines are printed.
set -euo pipefail

: "${LADDER_TEST_KUBECONFIG:?set LADDER_TEST_KUBECONFIG to the kubeconfig of the cluster}"
: "${LADDER_SMOKE_IMAGE:?set LADDER_SMOKE_IMAGE to the trainer image}"
SLICE="${1:-v5litepod-8}"
NAMESPACE="${LADDER_SMOKE_NAMESPACE:-default}"
TIMEOUT="${LADDER_SMOKE_TIMEOUT:-1200}"
MIN_RATIO="${LADDER_SMOKE_MIN_RATIO:-0.8}"
MIN_GBPS="${LADDER_SMOKE_MIN_GBPS:-10}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"; else PYTHON="${PYTHON:-python}"; fi
export KUBECONFIG="$LADDER_TEST_KUBECONFIG"
WORK="$(mktemp -d)"
NAMES=()

# shellcheck disable=SC2317,SC2329  # called by the EXIT trap
cleanup() {
    for name in "${NAMES[@]}"; do
        kubectl -n "$NAMESPACE" delete job,service -l "ladder.dev/smoke=$name" --ignore-not-found --wait=false \
            >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

manifests() {  # NAME [--host-network]: the Service and Job, rendered by the operator's code
    PYTHONPATH="$ROOT/api:$ROOT/operator${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m ladder_operator.smoke \
        --slice "$SLICE" --image "$LADDER_SMOKE_IMAGE" --namespace "$NAMESPACE" --name "$1" "${@:2}"
}

run_smoke() {  # NAME [--host-network]: apply, wait, print the checks' lines into $WORK/NAME.log
    local name="$1"
    NAMES+=("$name")
    manifests "$@" >"$WORK/$name.yaml"
    kubectl apply -f "$WORK/$name.yaml" >/dev/null
    echo "== $name: waiting up to ${TIMEOUT}s for the $SLICE pods" >&2
    if ! kubectl -n "$NAMESPACE" wait --for=condition=complete "job/$name" --timeout="${TIMEOUT}s" >/dev/null; then
        echo "== $name: did not complete; pod state:" >&2
        kubectl -n "$NAMESPACE" get pods -l "ladder.dev/smoke=$name" -o wide >&2 || true
        kubectl -n "$NAMESPACE" describe pods -l "ladder.dev/smoke=$name" | tail -n 40 >&2 || true
    fi
    kubectl -n "$NAMESPACE" logs -l "ladder.dev/smoke=$name" --tail=-1 --prefix 2>/dev/null \
        | grep '{"check"' | tee "$WORK/$name.log" || true
}

check_node_allocatable() {  # the pods' requests fit what the nodes really have allocatable
    local node
    node="$(kubectl -n "$NAMESPACE" get pods -l "ladder.dev/smoke=$1" -o jsonpath='{.items[0].spec.nodeName}')"
    [ -n "$node" ] || { echo '{"check": "allocatable", "ok": false, "error": "no pod was scheduled"}'; return 1; }
    echo "{\"check\": \"allocatable\", \"node\": \"$node\", \"allocatable\": $(kubectl get node "$node" \
        -o jsonpath='{.status.allocatable}'), \"requests\": $(kubectl -n "$NAMESPACE" get pods \
        -l "ladder.dev/smoke=$1" -o jsonpath='{.items[0].spec.containers[0].resources.requests}')}"
}

gbps() {  # LOG: the dcn check's Gbit/s, empty when absent
    "$PYTHON" -c 'import json,sys; print(next((json.loads(l[l.index("{"):])["gbit_per_s"] for l in open(sys.argv[1])
        if "\"dcn\"" in l), ""))' "$1"
}

status=0
run_smoke ladder-tpu-smoke
check_node_allocatable ladder-tpu-smoke || status=1
if grep -q '"ok": false' "$WORK/ladder-tpu-smoke.log" || ! grep -q '"check": "devices"' "$WORK/ladder-tpu-smoke.log"; then
    status=1
fi
pod_gbps="$(gbps "$WORK/ladder-tpu-smoke.log")"
if [ -n "$pod_gbps" ]; then
    "$PYTHON" -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$pod_gbps" "$MIN_GBPS" \
        || { echo "DCN over the pod network: $pod_gbps Gbit/s < $MIN_GBPS" >&2; status=1; }
fi
if [ "${LADDER_SMOKE_HOST_NETWORK:-0}" = 1 ] && [ -n "$pod_gbps" ]; then
    run_smoke ladder-tpu-smoke-hostnet --host-network
    host_gbps="$(gbps "$WORK/ladder-tpu-smoke-hostnet.log")"
    if [ -z "$host_gbps" ]; then
        echo "hostNetwork run gave no DCN figure (does the namespace allow host networking?)" >&2
        status=1
    else
        ratio="$("$PYTHON" -c "import sys; print(round(float(sys.argv[1]) / float(sys.argv[2]), 3))" "$pod_gbps" "$host_gbps")"
        echo "{\"check\": \"dcn-ratio\", \"pod_gbit_per_s\": $pod_gbps, \"host_gbit_per_s\": $host_gbps, \"ratio\": $ratio}"
        "$PYTHON" -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$ratio" "$MIN_RATIO" \
            || { echo "pod network reaches only $ratio of host networking: consider resources.hostNetwork" >&2; status=1; }
    fi
fi
[ "$status" = 0 ] && echo "tpu-smoke: all checks passed on $SLICE" >&2 || echo "tpu-smoke: FAILED on $SLICE" >&2
exit "$status"
