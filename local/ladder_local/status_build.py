"""Build the experiment's status (ladder_api.status.ScalingExperimentStatus) from what the runner
knows about each size and what is on disk. Pure: the same inputs always give the same status, so
the status `ladder run` writes is tested without running anything.

The sizes come from here (the runner's activity plus the files); the digest of the results of
record (per-size measurements, the summary) from ladder_api.digest and the phase, message and
conditions from ladder_api.conditions, the operator's rules too, so tooling and the report
read one format and one vocabulary whichever backend produced it. What only this backend knows
is said explicitly: whether the runner is still working and whether it was interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ladder_api import digest
from ladder_api.conditions import Circumstances, Preparation, Reason, Suspension, experiment_status
from ladder_api.plan import CODE_VERSION, Plan, RunConfig
from ladder_api.status import ScalingExperimentStatus, SizePhase, SizeStatus
from ladder_local.observe import SizeObservation

LOCAL_IMAGES = {
    "trainer": "local: python -m ladder_trainer",
    "evaluator": "local: python -m ladder_evaluator",
}
RESUME_HINT = "interrupted; run `ladder run` on the same file again to resume"
INTERRUPTED = Suspension(Reason.interrupted, RESUME_HINT)


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


def build_status(
    plan: Plan,
    observations: Mapping[int, SizeObservation],
    activities: Mapping[int, SizeActivity],
    *,
    active: bool,
    now: str,
    previous: ScalingExperimentStatus | None = None,
    interrupted: bool = False,
    preparation: Preparation | None = None,
) -> ScalingExperimentStatus:
    """The whole status. `active` says the runner is still working (between two tasks a size may
    be pending while the experiment is running); `interrupted` that it was asked to stop (Ctrl-C,
    SIGTERM): the experiment reads Suspended from then on, while its tasks save and exit;
    `preparation` that spec.data.prepare is still running (Preparing) or failed (Failed)."""
    sizes = [
        size_status(run, observations.get(run.width) or SizeObservation(run.width),
                    activities.get(run.width, SizeActivity()))
        for run in plan.runs
    ]
    results = {w: obs.results for w, obs in observations.items()}
    circumstances = Circumstances(
        suspension=INTERRUPTED if interrupted else None, active=active, preparation=preparation
    )
    return experiment_status(
        sizes, digest.compute(plan.runs, results, digest.finished(sizes)),
        circumstances=circumstances, previous=previous, now=now,
        spec_hash=plan.spec_hash, code_version=CODE_VERSION, images=dict(LOCAL_IMAGES),
        storage_root=plan.root,
    )
