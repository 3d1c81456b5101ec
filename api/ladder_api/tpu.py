"""The TPU v5 slice table: the one place that knows what a slice name means on GKE.

Source: xpk's system characteristics and the GKE TPU docs (see shared/reference/tpu.md).
Multi-host slices have 4 chips per host and one pod per host; the single-host v5e node pools
(ct5lp-hightpu-1t/4t/8t) are listed too because evaluation fits on one host.

Each slice names the machine type of its hosts (the node label node.kubernetes.io/instance-type):
a 2x4 v5e topology is either one ct5lp-hightpu-8t host or two ct5lp-hightpu-4t hosts, and only the
machine type tells those node pools apart. The machine's vCPUs and memory (Compute Engine's
machine-type table) give the pods' CPU and memory requests: what GKE leaves allocatable on such a
node (its documented kubelet and system reservations) less an allowance for the system
DaemonSets every node runs.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class TpuGeneration:
    name: str
    accelerator: str
    hbm_bytes_per_chip: int
    peak_bf16_flops_per_chip: float


V5E = TpuGeneration("v5e", "tpu-v5-lite-podslice", 16 * GIB, 197e12)
V5P = TpuGeneration("v5p", "tpu-v5p-slice", 95 * GIB, 459e12)


@dataclass(frozen=True)
class MachineType:
    name: str
    vcpus: int
    memory_gib: int

    @property
    def pod_cpu(self) -> str:
        """CPU request of the one pod on such a node (whole cores, as a Kubernetes quantity)."""
        return str(int(self.vcpus - gke_reserved_cpu(self.vcpus) - DAEMONSET_CPU))

    @property
    def pod_memory(self) -> str:
        """Memory request of the one pod on such a node (whole GiB)."""
        capacity = self.memory_gib * (1 - KERNEL_MEMORY_FRACTION)
        return f"{int(capacity - gke_reserved_memory_gib(capacity) - DAEMONSET_MEMORY_GIB)}Gi"


# A node's memory capacity is below the machine's nominal size (kernel, firmware): about 3%.
KERNEL_MEMORY_FRACTION = 0.03
# Room for the DaemonSets of a GKE TPU node (kube-proxy, logging, metadata server, CSI, device
# plugin): about one core and a few GiB; the rest of the allocatable is the workload's.
DAEMONSET_CPU = 1.0
DAEMONSET_MEMORY_GIB = 4.0


def gke_reserved_cpu(vcpus: int) -> float:
    """GKE's kubelet/system CPU reservation: 6% of the first core, 1% of the next, 0.5% of the
    next 2, 0.25% of every core above 4."""
    tiers = [(1, 0.06), (1, 0.01), (2, 0.005), (float("inf"), 0.0025)]
    return _tiered(vcpus, tiers)


def gke_reserved_memory_gib(memory_gib: float) -> float:
    """GKE's memory reservation: 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8,
    6% of the next 112, 2% above 128 GiB, plus the 100 MiB eviction threshold."""
    tiers = [(4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (float("inf"), 0.02)]
    return _tiered(memory_gib, tiers) + 100 / 1024


def _tiered(amount: float, tiers: list[tuple[float, float]]) -> float:
    total, left = 0.0, amount
    for size, rate in tiers:
        part = min(left, size)
        total += part * rate
        left -= part
        if left <= 0:
            break
    return total


MACHINES: dict[str, MachineType] = {
    m.name: m
    for m in [
        MachineType("ct5lp-hightpu-1t", 24, 48),
        MachineType("ct5lp-hightpu-4t", 112, 192),
        MachineType("ct5lp-hightpu-8t", 224, 384),
        MachineType("ct5p-hightpu-4t", 208, 448),
    ]
}


@dataclass(frozen=True)
class SliceType:
    name: str
    generation: TpuGeneration
    topology: str
    chips: int
    hosts: int
    machine_type: str

    @property
    def machine(self) -> MachineType:
        return MACHINES[self.machine_type]

    @property
    def chips_per_host(self) -> int:
        return self.chips // self.hosts

    @property
    def accelerator(self) -> str:
        return self.generation.accelerator

    @property
    def hbm_bytes_per_chip(self) -> int:
        return self.generation.hbm_bytes_per_chip


def _s(name: str, gen: TpuGeneration, topology: str, chips: int, hosts: int, machine: str) -> SliceType:
    return SliceType(name, gen, topology, chips, hosts, machine)


SLICES: dict[str, SliceType] = {
    s.name: s
    for s in [
        # Single-host v5e node pools (ct5lp-hightpu-1t / -4t / -8t).
        _s("v5litepod-1", V5E, "1x1", 1, 1, "ct5lp-hightpu-1t"),
        _s("v5litepod-4", V5E, "2x2", 4, 1, "ct5lp-hightpu-4t"),
        _s("v5litepod-8-1host", V5E, "2x4", 8, 1, "ct5lp-hightpu-8t"),
        # Multi-host v5e slices, 4 chips per host.
        _s("v5litepod-8", V5E, "2x4", 8, 2, "ct5lp-hightpu-4t"),
        _s("v5litepod-16", V5E, "4x4", 16, 4, "ct5lp-hightpu-4t"),
        _s("v5litepod-32", V5E, "4x8", 32, 8, "ct5lp-hightpu-4t"),
        _s("v5litepod-64", V5E, "8x8", 64, 16, "ct5lp-hightpu-4t"),
        _s("v5litepod-128", V5E, "8x16", 128, 32, "ct5lp-hightpu-4t"),
        _s("v5litepod-256", V5E, "16x16", 256, 64, "ct5lp-hightpu-4t"),
        # v5p: the name counts TensorCores (2 per chip).
        _s("v5p-8", V5P, "2x2x1", 4, 1, "ct5p-hightpu-4t"),
        _s("v5p-16", V5P, "2x2x2", 8, 2, "ct5p-hightpu-4t"),
        _s("v5p-32", V5P, "2x2x4", 16, 4, "ct5p-hightpu-4t"),
        _s("v5p-64", V5P, "2x4x4", 32, 8, "ct5p-hightpu-4t"),
        _s("v5p-128", V5P, "4x4x4", 64, 16, "ct5p-hightpu-4t"),
    ]
}


def slice_type(name: str) -> SliceType:
    """Look a slice up; the error lists every valid name so the user can fix the spec."""
    try:
        return SLICES[name]
    except KeyError:
        raise ValueError(
            f"unknown TPU slice type {name!r}; valid: {', '.join(SLICES)}"
        ) from None
