"""The experiment's phase, message, conditions and summary: one rule set for every backend.

The operator and `ladder run` describe an experiment the same way, so `kubectl get sx`,
`ladder status`, the report and Argo CD's health check read one vocabulary whichever backend
wrote the status. What only one backend knows comes in as an explicit input (`Circumstances`):
why the experiment is suspended (spec.suspend on a cluster, an interrupted `ladder run`
locally), a refused spec edit (only the operator refuses edits; `ladder run` stops with a user
error instead), and whether the backend is still working on it (a finished `ladder run` is not).

Pure: the same inputs give the same status; a condition keeps its lastTransitionTime while its
status stays the same, so rewriting an unchanged status never looks like a transition.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ladder_api.digest import Digest, summary_of
from ladder_api.estimate import StudyEstimate, cost_status
from ladder_api.status import (
    Condition,
    ExperimentPhase,
    ScalingExperimentStatus,
    SizePhase,
    SizeStatus,
)

READY, PROGRESSING, DEGRADED, SUSPENDED = "Ready", "Progressing", "Degraded", "Suspended"
CONDITION_TYPES = (READY, PROGRESSING, DEGRADED, SUSPENDED)
BUSY = (SizePhase.training, SizePhase.evaluating)
NOT_STARTED = (SizePhase.pending, SizePhase.queued)
FINISHED = (SizePhase.succeeded, SizePhase.failed)


class Reason(StrEnum):
    """Every condition reason either backend writes."""

    all_sizes_evaluated = "AllSizesEvaluated"
    sizes_remaining = "SizesRemaining"
    sizes_running = "SizesRunning"
    size_failed = "SizeFailed"
    size_suspended = "SizeSuspended"
    as_expected = "AsExpected"
    spec_change_refused = "SpecChangeRefused"
    object_rejected = "ObjectRejected"
    invalid_spec = "InvalidSpec"
    suspended_by_spec = "SuspendedBySpec"
    interrupted = "Interrupted"
    not_suspended = "NotSuspended"
    stopped = "Stopped"
    preparing_data = "PreparingData"
    prepare_failed = "PrepareFailed"


@dataclass(frozen=True)
class Suspension:
    """Why the whole experiment is held: Reason.suspended_by_spec or Reason.interrupted."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class Preparation:
    """The data preparation (spec.data.prepare) that runs before any size trains: still running
    (phase Preparing) or failed (phase Failed); absent once the data is prepared."""

    failed: bool
    message: str


@dataclass(frozen=True)
class Circumstances:
    """What the sizes' phases cannot tell; each backend says what it knows."""

    suspension: Suspension | None = None
    refused: tuple[str, ...] = ()  # refused spec edits, each naming its field (operator only)
    rejected: str = ""  # what the API server refused to create, and why (operator only)
    active: bool = True  # False once the backend stopped working on it (a finished `ladder run`)
    preparation: Preparation | None = None  # the data is still being prepared, or that failed


# --- phase and message ---------------------------------------------------------------------------


def experiment_phase(
    sizes: Sequence[SizeStatus], circumstances: Circumstances | None = None
) -> ExperimentPhase:
    """All sizes done wins over a suspension (nothing is left to hold); a suspension over
    failures; an experiment nobody works on any more is Failed (or Pending) rather than Running."""
    circumstances = circumstances or Circumstances()
    phases = [s.phase for s in sizes]
    if phases and all(p is SizePhase.succeeded for p in phases):
        return ExperimentPhase.succeeded
    preparation = circumstances.preparation
    if preparation is not None and preparation.failed:
        return ExperimentPhase.failed
    if circumstances.suspension is not None:
        return ExperimentPhase.suspended
    if preparation is not None:
        return ExperimentPhase.preparing
    stopped = not circumstances.active and not any(p in BUSY for p in phases)
    if all(p in FINISHED for p in phases) or stopped:
        return ExperimentPhase.failed if SizePhase.failed in phases else ExperimentPhase.pending
    if all(p in NOT_STARTED for p in phases) and not circumstances.refused:
        return ExperimentPhase.pending
    return ExperimentPhase.running


def _widths(sizes: Iterable[SizeStatus], phase: SizePhase) -> list[str]:
    return [f"c{s.width}" for s in sizes if s.phase is phase]


def _failures(sizes: Sequence[SizeStatus], phase: SizePhase = SizePhase.failed) -> str:
    return "; ".join(f"c{s.width}: {s.message or phase.value.lower()}" for s in sizes if s.phase is phase)


def experiment_message(
    phase: ExperimentPhase, sizes: Sequence[SizeStatus], circumstances: Circumstances | None = None
) -> str:
    """One line for `kubectl get`/`ladder status`. It changes only when a size changes phase
    (never with training steps), so an unchanged experiment gives an unchanged status."""
    circumstances = circumstances or Circumstances()
    total = len(sizes)
    if phase is ExperimentPhase.succeeded:
        return f"all {total} sizes trained and evaluated"
    if phase is ExperimentPhase.suspended and circumstances.suspension is not None:
        return circumstances.suspension.message
    preparation = circumstances.preparation
    if preparation is not None and phase in (ExperimentPhase.failed, ExperimentPhase.preparing):
        failed = preparation.failed
        return f"data preparation failed: {preparation.message}" if failed else preparation.message
    if phase is ExperimentPhase.failed:
        failed = len(_widths(sizes, SizePhase.failed))
        return f"{failed} of {total} sizes failed: {_failures(sizes)}"
    if phase is ExperimentPhase.pending:
        return "waiting for the first size to start"
    done = len(_widths(sizes, SizePhase.succeeded))
    parts = [f"{done}/{total} sizes done"]
    for busy, verb in ((SizePhase.training, "training"), (SizePhase.evaluating, "evaluating")):
        if names := _widths(sizes, busy):
            parts.append(f"{verb} {', '.join(names)}")
    return "; ".join(parts)


def refusal_message(refused: Sequence[str]) -> str:
    return (
        "refused: " + "; ".join(refused) + ". These fields fix what a started size means; revert "
        "them (old runs are untouched) or create a new experiment."
    )


# --- conditions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Want:
    type: str
    on: bool
    reason: Reason
    message: str


def _held_reason(phase: ExperimentPhase, circumstances: Circumstances) -> Reason:
    """Why the experiment is not (or no longer) making progress."""
    if phase is ExperimentPhase.succeeded:
        return Reason.all_sizes_evaluated
    if phase is ExperimentPhase.failed:
        failed_prepare = circumstances.preparation is not None and circumstances.preparation.failed
        return Reason.prepare_failed if failed_prepare else Reason.size_failed
    if phase is ExperimentPhase.suspended and circumstances.suspension is not None:
        return circumstances.suspension.reason
    if circumstances.refused:
        return Reason.spec_change_refused
    if circumstances.rejected:
        return Reason.object_rejected
    return Reason.stopped


def _degraded(sizes: Sequence[SizeStatus], circumstances: Circumstances) -> _Want:
    """A refused edit first (nothing new starts until it is reverted), then an object the API
    server refused (nothing new starts until the spec changes), then failed sizes, then a size
    held while the experiment is not (e.g. Kueue deactivated its Workload)."""
    if circumstances.refused:
        return _Want(DEGRADED, True, Reason.spec_change_refused, refusal_message(circumstances.refused))
    if circumstances.rejected:
        return _Want(DEGRADED, True, Reason.object_rejected, circumstances.rejected)
    if circumstances.preparation is not None and circumstances.preparation.failed:
        return _Want(DEGRADED, True, Reason.prepare_failed, circumstances.preparation.message)
    if failures := _failures(sizes):
        return _Want(DEGRADED, True, Reason.size_failed, failures)
    if circumstances.suspension is None and (held := _failures(sizes, SizePhase.suspended)):
        return _Want(DEGRADED, True, Reason.size_suspended, held)
    return _Want(DEGRADED, False, Reason.as_expected, "")


def _wanted(
    phase: ExperimentPhase, message: str, sizes: Sequence[SizeStatus], circumstances: Circumstances
) -> list[_Want]:
    done = phase is ExperimentPhase.succeeded
    preparing = phase is ExperimentPhase.preparing
    progressing = phase in (ExperimentPhase.pending, ExperimentPhase.preparing, ExperimentPhase.running)
    held_back = circumstances.refused or circumstances.rejected
    progressing = progressing and circumstances.active and not held_back
    held = _held_reason(phase, circumstances)
    suspension = circumstances.suspension if phase is ExperimentPhase.suspended else None
    settled = phase in (ExperimentPhase.succeeded, ExperimentPhase.failed, ExperimentPhase.suspended)
    ready_reason = held if settled else Reason.preparing_data if preparing else Reason.sizes_remaining
    running = Reason.preparing_data if preparing else Reason.sizes_running
    return [
        _Want(READY, done, ready_reason, message),
        _Want(PROGRESSING, progressing, running if progressing else held,
              ", ".join(f"c{s.width} {s.phase.value}" for s in sizes)),
        _degraded(sizes, circumstances),
        _Want(SUSPENDED, suspension is not None,
              suspension.reason if suspension else Reason.not_suspended,
              suspension.message if suspension else ""),
    ]


def _conditions(
    wanted: Iterable[_Want], previous: Iterable[Condition], now: str, generation: int | None
) -> list[Condition]:
    """The conditions, each keeping its lastTransitionTime while its status is unchanged."""
    before = {c.type: c for c in previous}
    out = []
    for want in wanted:
        status = "True" if want.on else "False"
        prev = before.get(want.type)
        kept = prev is not None and prev.status == status and prev.last_transition_time
        out.append(Condition(
            type=want.type, status=status, reason=want.reason.value, message=clip(want.message, MAX_MESSAGE),
            last_transition_time=prev.last_transition_time if kept else now,
            observed_generation=generation,
        ))
    return out


# --- the whole status ----------------------------------------------------------------------------

MAX_SIZE_MESSAGE = 512  # characters of one size's message the experiment's messages repeat
MAX_MESSAGE = 4096  # characters of the experiment's message and of each condition's


def clip(text: str | None, limit: int) -> str | None:
    """`text` cut to `limit` characters, saying so: messages quote what failed (a JobSet's
    condition, a pod's reason), and the status must stay bounded whatever they say."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 14] + " ... (cut)"


def _with_digest(size: SizeStatus, digest: Digest | None) -> SizeStatus:
    update: dict = {"message": clip(size.message, MAX_SIZE_MESSAGE)}
    if digest is not None:
        update["measurements"] = digest.sizes.get(size.width)
    return size.model_copy(update=update)


def experiment_status(
    sizes: Sequence[SizeStatus],
    digest: Digest | None = None,
    *,
    circumstances: Circumstances | None = None,
    previous: ScalingExperimentStatus | None = None,
    now: str,
    generation: int | None = None,
    estimate: StudyEstimate | None = None,
    **identity,
) -> ScalingExperimentStatus:
    """The whole status from the sizes' phases and the digest of the results of record
    (ladder_api.digest; None: the summary holds progress only, and a caller that reads the
    results later adds it, as the operator does). `identity` holds the fields that only name
    what is described (spec_hash, code_version, images); `estimate`, the study's cost
    (ladder_api.estimate), becomes status.cost with what the sizes' progress has spent of it."""
    circumstances = circumstances or Circumstances()
    sizes = [_with_digest(s, digest) for s in sizes]
    phase = experiment_phase(sizes, circumstances)
    message = clip(experiment_message(phase, sizes, circumstances), MAX_MESSAGE)
    wanted = _wanted(phase, message, sizes, circumstances)
    return ScalingExperimentStatus(
        phase=phase,
        message=message,
        observed_generation=generation,
        conditions=_conditions(wanted, previous.conditions if previous else [], now, generation),
        sizes=sizes,
        summary=summary_of(digest.summary if digest else None, sizes),
        cost=cost_status(estimate, sizes) if estimate is not None else None,
        **identity,
    )


def invalid_status(
    message: str, previous: ScalingExperimentStatus | None, *, now: str, generation: int | None = None
) -> ScalingExperimentStatus:
    """The status of a spec that does not validate. It keeps everything already known (sizes and
    their measurements, the summary, what was run): a short-lived bad edit must not erase the record of sizes
    that trained, nor make the backend think they never ran."""
    wanted = [
        _Want(READY, False, Reason.invalid_spec, message),
        _Want(PROGRESSING, False, Reason.invalid_spec, "fix the spec; nothing runs until then"),
        _Want(DEGRADED, True, Reason.invalid_spec, message),
        _Want(SUSPENDED, False, Reason.not_suspended, ""),
    ]
    kept = previous.model_copy() if previous is not None else ScalingExperimentStatus()
    return kept.model_copy(update={
        "phase": ExperimentPhase.invalid,
        "message": clip(message, MAX_MESSAGE),
        "observed_generation": generation,
        "conditions": _conditions(wanted, kept.conditions, now, generation),
    })
