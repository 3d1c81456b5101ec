"""Build the experiment's status (ladder_api.status.ScalingExperimentStatus) from what the runner
knows about each size and what is on disk. Pure: the same inputs always give the same status, so
the shape `ladder run` writes is tested without running anything.

The local status has exactly the custom resource's shape (sizes keyed by width, results keyed by
id, the summary with the frontier from ladder_api.frontier), so tooling and the report read one
format whichever backend produced it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ladder_api.frontier import summarize
from ladder_api.plan import CODE_VERSION, Plan, RunConfig
from ladder_api.status import (
    Condition,
    ExperimentPhase,
    Result,
    ScalingExperimentStatus,
    SizePhase,
    SizeStatus,
)
from ladder_local.observe import SizeObservation

LOCAL_IMAGES = {
    "trainer": "local: python -m ladder_trainer",
    "evaluator": "local: python -m ladder_evaluator",
}
RESUME_HINT = "interrupted; run `ladder run` on the same file again to resume"


@dataclass(frozen=True)
class SizeActivity:
    """What the runner is doing with one size (the part of its phase that files cannot tell)."""

    phase: SizePhase = SizePhase.pending
    message: str | None = None


def size_status(run: RunConfig, obs: SizeObservation, activity: SizeActivity) -> SizeStatus:
    last = obs.last_metrics or {}
    ckpt = max(obs.checkpoint_steps) if obs.checkpoint_steps else None
    step = last.get("step")
    if ckpt is not None and (step is None or ckpt > step):
        step = ckpt  # a resumed run has not logged yet, but its checkpoint says where it is
    loss = last.get("loss")
    return SizeStatus(
        width=run.width,
        phase=activity.phase,
        step=int(step) if isinstance(step, int | float) else None,
        total_steps=run.training.steps,
        loss=float(loss) if isinstance(loss, int | float) else None,
        checkpoint_step=ckpt,
        checkpoint_uri=f"{run.paths.checkpoints}/{ckpt}" if ckpt is not None else None,
        message=activity.message,
    )


def experiment_phase(sizes: Sequence[SizeStatus], active: bool) -> ExperimentPhase:
    phases = [s.phase for s in sizes]
    if any(p in (SizePhase.training, SizePhase.evaluating) for p in phases):
        return ExperimentPhase.running
    if phases and all(p is SizePhase.succeeded for p in phases):
        return ExperimentPhase.succeeded
    if active:
        return ExperimentPhase.running
    if SizePhase.suspended in phases:
        return ExperimentPhase.suspended
    if SizePhase.failed in phases:
        return ExperimentPhase.failed
    return ExperimentPhase.pending


def _message(phase: ExperimentPhase, sizes: Sequence[SizeStatus]) -> str | None:
    if phase is ExperimentPhase.running:
        busy = []
        for s in sizes:
            if s.phase is SizePhase.training:
                busy.append(f"training c{s.width} ({s.step or 0}/{s.total_steps})")
            elif s.phase is SizePhase.evaluating:
                busy.append(f"evaluating c{s.width}")
        return "; ".join(busy) or "starting the next size"
    if phase is ExperimentPhase.suspended:
        return RESUME_HINT
    if phase is ExperimentPhase.failed:
        return "; ".join(f"c{s.width}: {s.message or 'failed'}" for s in sizes if s.phase is SizePhase.failed)
    if phase is ExperimentPhase.succeeded:
        return f"all {len(sizes)} sizes trained and evaluated"
    return None


def _conditions(
    phase: ExperimentPhase, sizes: Sequence[SizeStatus], previous: Sequence[Condition], now: str
) -> list[Condition]:
    failed = [s for s in sizes if s.phase is SizePhase.failed]
    done = phase is ExperimentPhase.succeeded
    running = phase is ExperimentPhase.running
    suspended = phase is ExperimentPhase.suspended
    wanted = [
        ("Ready", done, "AllSizesEvaluated" if done else "SizesRemaining"),
        ("Progressing", running, "Running" if running else phase.value),
        ("Degraded", bool(failed), "SizeFailed" if failed else "NoFailures"),
        ("Suspended", suspended, "Interrupted" if suspended else "NotSuspended"),
    ]
    before = {c.type: c for c in previous}
    out = []
    for ctype, on, reason in wanted:
        status = "True" if on else "False"
        prev = before.get(ctype)
        since = prev.last_transition_time if prev is not None and prev.status == status else now
        out.append(Condition(type=ctype, status=status, reason=reason, last_transition_time=since))
    return out


def build_status(
    plan: Plan,
    observations: Mapping[int, SizeObservation],
    activities: Mapping[int, SizeActivity],
    *,
    active: bool,
    now: str,
    previous: ScalingExperimentStatus | None = None,
    message: str | None = None,
) -> ScalingExperimentStatus:
    """The whole status. `active` says the runner is still working (between two tasks a size may
    be pending while the experiment is running); `message` overrides the derived one."""
    sizes = [
        size_status(run, observations.get(run.width) or SizeObservation(run.width),
                    activities.get(run.width, SizeActivity()))
        for run in plan.runs
    ]
    results: dict[str, Result] = {}
    for run in plan.runs:
        obs = observations.get(run.width)
        for r in obs.results if obs else []:
            results[r.id] = r
    ordered = [results[k] for k in sorted(results)]
    phase = experiment_phase(sizes, active)
    done = sum(1 for s in sizes if s.phase is SizePhase.succeeded)
    return ScalingExperimentStatus(
        phase=phase,
        message=message or _message(phase, sizes),
        spec_hash=plan.spec_hash,
        code_version=CODE_VERSION,
        images=dict(LOCAL_IMAGES),
        conditions=_conditions(phase, sizes, previous.conditions if previous else [], now),
        sizes=sizes,
        results=ordered,
        summary=summarize(ordered, done, len(sizes)),
    )
