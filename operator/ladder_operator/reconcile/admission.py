"""Step 6: which sizes start training now: in the spec's order, while fewer than maxConcurrent
hold a slot, and none while the spec is suspended or an edit is refused.

Every start goes through here, so maxConcurrent holds on every path: first start, a size whose
start was recorded before a crash, a retried size.
"""

from __future__ import annotations

from collections.abc import Sequence

from ladder_api.status import SizePhase, SizeStatus
from ladder_operator.reconcile.sizes import SizeDecision, queued_message


def admit(decisions: Sequence[SizeDecision], max_concurrent: int, *, blocked: bool) -> list[int]:
    """The widths whose training JobSets are created now. Sizes already recorded as started
    (owed their JobSet) go first, then new ones, each in the spec's order."""
    if blocked:
        return []
    free = max_concurrent - sum(1 for d in decisions if d.holds_slot)
    waiting = [d for d in decisions if d.wants_start]
    ordered = [d for d in waiting if d.record.started] + [d for d in waiting if not d.record.started]
    return [d.width for d in ordered[: max(free, 0)]]


def started_status(status: SizeStatus, kueue: bool, queue: str) -> SizeStatus:
    """The phase of a size whose training JobSet was just created: the same words as on the
    next pass (before Kueue admits it), so the next status write changes nothing."""
    if kueue:
        return status.model_copy(update={"phase": SizePhase.queued, "message": queued_message(queue)})
    return status.model_copy(update={"phase": SizePhase.training, "message": None})
