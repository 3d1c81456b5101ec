"""The TPU v5 slice table: the one place that knows what a slice name means on GKE.

Source: xpk's system characteristics and the GKE TPU docs (see shared/reference/tpu.md).
Multi-host slices have 4 chips per host and one pod per host; the single-host v5e node pools
(ct5lp-hightpu-1t/4t/8t) are listed too because evaluation fits on one host.
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
class SliceType:
    name: str
    generation: TpuGeneration
    topology: str
    chips: int
    hosts: int

    @property
    def chips_per_host(self) -> int:
        return self.chips // self.hosts

    @property
    def accelerator(self) -> str:
        return self.generation.accelerator

    @property
    def hbm_bytes_per_chip(self) -> int:
        return self.generation.hbm_bytes_per_chip


def _s(name: str, gen: TpuGeneration, topology: str, chips: int, hosts: int) -> SliceType:
    return SliceType(name, gen, topology, chips, hosts)


SLICES: dict[str, SliceType] = {
    s.name: s
    for s in [
        # Single-host v5e node pools (ct5lp-hightpu-1t / -4t / -8t).
        _s("v5litepod-1", V5E, "1x1", 1, 1),
        _s("v5litepod-4", V5E, "2x2", 4, 1),
        _s("v5litepod-8-1host", V5E, "2x4", 8, 1),
        # Multi-host v5e slices, 4 chips per host.
        _s("v5litepod-8", V5E, "2x4", 8, 2),
        _s("v5litepod-16", V5E, "4x4", 16, 4),
        _s("v5litepod-32", V5E, "4x8", 32, 8),
        _s("v5litepod-64", V5E, "8x8", 64, 16),
        _s("v5litepod-128", V5E, "8x16", 128, 32),
        _s("v5litepod-256", V5E, "16x16", 256, 64),
        # v5p: the name counts TensorCores (2 per chip).
        _s("v5p-8", V5P, "2x2x1", 4, 1),
        _s("v5p-16", V5P, "2x2x2", 8, 2),
        _s("v5p-32", V5P, "2x2x4", 16, 4),
        _s("v5p-64", V5P, "2x4x4", 32, 8),
        _s("v5p-128", V5P, "4x4x4", 64, 16),
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
