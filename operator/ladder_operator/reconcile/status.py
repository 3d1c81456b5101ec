"""The last step: the operator's part of the status, built by ladder_api.conditions (the rules
`ladder run` uses too), and the Events that narrate its transitions.

The operator applies only the fields it owns (server-side apply, field manager ladder-operator):
the trainer pods own each size's progress (step, loss, checkpoint) and the evaluator pods their
progress reports, and an apply without them leaves them alone. The digest of the results of
record (ladder_api.digest) is the operator's too: reconcile() leaves it out (it reads no
storage) and the controller adds it with `with_digest` before applying.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from ladder_api.conditions import Circumstances, Preparation, Reason, Suspension, experiment_status
from ladder_api.digest import Digest
from ladder_api.estimate import Assumptions, estimate
from ladder_api.plan import CODE_VERSION, Plan
from ladder_api.spec import ScalingExperimentSpec
from ladder_api.status import ScalingExperimentStatus, SizePhase, SizeStatus
from ladder_operator.reconcile.actions import PostEvent
from ladder_operator.reconcile.experiment import ExperimentObject

SPEC_SUSPEND = Suspension(Reason.suspended_by_spec, "spec.suspend is true: JobSets are suspended")
OWNED = ("phase", "message", "observedGeneration", "specHash", "codeVersion", "images", "storageRoot",
         "conditions", "sizes", "summary", "cost")
SIZE_OWNED = ("width", "phase", "jobset", "evalJobset", "restarts", "message", "measurements")
PROGRESS = ("sizesDone", "sizesTotal", "progress")  # the summary's fields that come from the phases


def owned_wire(status: ScalingExperimentStatus) -> dict:
    """The wire form of the fields the operator owns."""
    wire = status.to_wire()
    out = {k: wire[k] for k in OWNED if k in wire}
    out["sizes"] = [{k: s[k] for k in SIZE_OWNED if k in s} for s in wire.get("sizes") or []]
    return out


def with_digest(owned: dict, digest: Digest | None, previous: ScalingExperimentStatus) -> dict:
    """`owned` (owned_wire) with the digest of the results of record: each size's measurements
    and the summary's results part. Without one (storage could not be read) what the status
    already says is kept: the operator applies its whole share each time, and a share without
    them would erase them."""
    out = copy.deepcopy(owned)
    if digest is not None:
        measured = {w: m.to_wire() for w, m in digest.sizes.items()}
        summary = digest.summary.to_wire()
    else:
        measured = {s.width: s.measurements.to_wire() for s in previous.sizes if s.measurements}
        summary = previous.summary.to_wire()
    for size in out.get("sizes") or []:
        if size["width"] in measured:
            size["measurements"] = measured[size["width"]]
    progress = {k: v for k, v in (out.get("summary") or {}).items() if k in PROGRESS}
    out["summary"] = {**{k: v for k, v in summary.items() if k not in PROGRESS}, **progress}
    return out


def operator_status(
    spec: ScalingExperimentSpec,
    plan: Plan,
    sizes: Sequence[SizeStatus],
    exp: ExperimentObject,
    refused: Sequence[str],
    now: str,
    rejected: str | None = None,
    assumptions: Assumptions | None = None,
    preparation: Preparation | None = None,
) -> ScalingExperimentStatus:
    """`assumptions`: the site's utilisation and price for the cost estimate (chart defaults)."""
    circumstances = Circumstances(suspension=SPEC_SUSPEND if spec.suspend else None, refused=tuple(refused),
                                  rejected=rejected or "", preparation=preparation)
    sizes = with_progress(sizes, exp.status.sizes)
    return experiment_status(
        sizes,
        circumstances=circumstances, previous=exp.status, now=now, generation=exp.generation,
        estimate=estimate(plan, assumptions), spec_hash=plan.spec_hash, code_version=CODE_VERSION,
        storage_root=plan.root,
        images={"trainer": spec.resources.images.trainer, "evaluator": spec.resources.images.evaluator},
    )


def with_progress(sizes: Sequence[SizeStatus], written: Sequence[SizeStatus]) -> list[SizeStatus]:
    """The operator's sizes with the training step the trainer pods wrote (theirs to write, so
    owned_wire leaves it out of the operator's apply): status.cost's spent share reads it."""
    steps = {s.width: (s.step, s.total_steps) for s in written if s.step is not None}
    return [s.model_copy(update=dict(zip(("step", "total_steps"), steps[s.width], strict=True)))
            if s.width in steps and s.step is None else s for s in sizes]


def size_events(
    previous: dict[int, SizePhase], sizes: Sequence[SizeStatus], started: set[int]
) -> list[PostEvent]:
    """One Event per size that changed phase; a size whose training JobSet was just created says
    so instead."""
    events = []
    for size in sizes:
        before = previous.get(size.width, SizePhase.pending)
        if size.width in started:
            events.append(PostEvent("Normal", "SizeStarted", f"size c{size.width}: training JobSet created"))
        elif size.phase is not before:
            kind = "Warning" if size.phase is SizePhase.failed else "Normal"
            text = f"size c{size.width}: {before.value} -> {size.phase.value}"
            text += f" ({size.message})" if size.message else ""
            events.append(PostEvent(kind, f"Size{size.phase.value}", text))
    return events


def experiment_events(exp: ExperimentObject, status: ScalingExperimentStatus) -> list[PostEvent]:
    """A refused edit or a refused object once (when Degraded first says so), and each phase
    change."""
    events = []
    degraded = next(c for c in status.conditions if c.type == "Degraded")
    before = next((c for c in exp.status.conditions if c.type == "Degraded"), None)
    warned = (Reason.spec_change_refused, Reason.object_rejected)
    if degraded.reason in warned and (before is None or before.reason != degraded.reason):
        events.append(PostEvent("Warning", degraded.reason, degraded.message))
    if status.phase.value != exp.phase:
        text = f"{exp.phase or 'New'} -> {status.phase.value}: {status.message}"
        events.append(PostEvent("Normal", f"Experiment{status.phase.value}", text))
    return events
