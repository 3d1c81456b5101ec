"""Admission: maxConcurrent on every path, in the spec's order, owed starts first."""

from __future__ import annotations

from ladder_api.status import SizePhase, SizeStatus
from ladder_operator.reconcile.admission import admit, started_status
from ladder_operator.reconcile.sizes import SizeDecision
from ladder_operator.reconcile.state import SizeRecord


def d(width, *, slot=False, wants=False, recorded=False) -> SizeDecision:
    return SizeDecision(SizeStatus(width=width), SizeRecord(started="r" if recorded else None),
                        holds_slot=slot, wants_start=wants)


def test_starts_in_order_while_slots_are_free():
    sizes = [d(32, slot=True), d(64, wants=True), d(96, wants=True), d(128, wants=True)]
    assert admit(sizes, 3, blocked=False) == [64, 96]
    assert admit(sizes, 1, blocked=False) == []
    assert admit(sizes, 10, blocked=True) == []


def test_starts_owed_by_the_record_go_first_and_count_too():
    sizes = [d(32, wants=True), d(64, wants=True, recorded=True), d(96, wants=True, recorded=True)]
    assert admit(sizes, 2, blocked=False) == [64, 96]
    assert admit(sizes, 1, blocked=False) == [64], "maxConcurrent holds for recorded starts as well"


def test_more_held_slots_than_allowed_start_nothing():
    """maxConcurrent lowered while sizes train: nothing is stopped, nothing new starts."""
    assert admit([d(32, slot=True), d(64, slot=True), d(96, wants=True)], 1, blocked=False) == []


def test_a_started_size_reads_the_same_before_and_after_its_jobset_exists():
    queued = started_status(SizeStatus(width=32), kueue=True, queue="tpu")
    assert queued.phase is SizePhase.queued
    assert queued.message == "waiting for Kueue to admit it in queue 'tpu'"
    training = started_status(SizeStatus(width=32, message="x"), kueue=False, queue="tpu")
    assert (training.phase, training.message) == (SizePhase.training, None)
