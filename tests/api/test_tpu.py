"""The slice table (ladder_api.tpu): machine types, and the CPU/memory a pod on one may request."""

from __future__ import annotations

import pytest

from ladder_api.tpu import MACHINES, SLICES, gke_reserved_cpu, gke_reserved_memory_gib


def test_every_slice_names_a_machine_whose_chips_match_its_hosts():
    for st in SLICES.values():
        machine = st.machine
        # GCE's TPU machine types end in the chips per VM: ct5lp-hightpu-4t has 4.
        assert machine.name.endswith(f"-{st.chips_per_host}t"), (st.name, machine.name)
        assert machine.name.startswith("ct5lp-" if st.generation.name == "v5e" else "ct5p-"), st.name


def test_pools_sharing_both_tpu_labels_differ_in_machine_type():
    by_labels: dict[tuple[str, str], set[tuple[int, str]]] = {}
    for st in SLICES.values():
        by_labels.setdefault((st.accelerator, st.topology), set()).add((st.hosts, st.machine_type))
    for labels, kinds in by_labels.items():
        machine_types = {m for _, m in kinds}
        assert len(machine_types) == len(kinds), (labels, kinds)  # the instance type tells them apart
    assert by_labels[("tpu-v5-lite-podslice", "2x4")] == {(1, "ct5lp-hightpu-8t"), (2, "ct5lp-hightpu-4t")}


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_pod_requests_fit_what_gke_leaves_allocatable(name):
    m = MACHINES[name]
    cpu, memory = int(m.pod_cpu), int(m.pod_memory.removesuffix("Gi"))
    assert m.pod_memory.endswith("Gi")
    assert 0.9 * m.vcpus <= cpu <= m.vcpus - gke_reserved_cpu(m.vcpus) - 1
    assert 0.75 * m.memory_gib <= memory <= m.memory_gib - gke_reserved_memory_gib(m.memory_gib) - 4


def test_gke_reservation_formulas():
    # GKE's documented examples: a 4-core node reserves 80 millicores, 16 GiB of memory 2.6 GiB (+ eviction).
    assert gke_reserved_cpu(4) == pytest.approx(0.08)
    assert gke_reserved_memory_gib(16) == pytest.approx(1 + 0.8 + 0.8 + 100 / 1024)
    assert gke_reserved_cpu(112) == pytest.approx(0.08 + 108 * 0.0025)


def test_docs_table_of_pod_requests_matches_the_slice_table():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "tpu.md").read_text()
    for m in MACHINES.values():
        row = f"| {m.name} | {m.vcpus} | {m.memory_gib} GiB | {m.pod_cpu} / {m.pod_memory} |"
        assert row in text, row
