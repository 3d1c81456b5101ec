"""reconcile(experiment, observed) -> Outcome: a short driver over named, pure steps.

validate -> deletion and finalizer -> refusal -> retry -> data preparation -> per-size phase ->
admission -> suspension -> record -> status. Each step is a function of typed inputs
(tests/operator has one test module per step); this module only threads them together and orders
the actions: the record before the objects it describes, then the objects, then the Events.
Training is admitted only once the data preparation (spec.data.prepare, when set) is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ladder_api.plan import Plan, expand
from ladder_api.recipe import keep_started_defaults, legacy_candidates
from ladder_api.spec import ScalingExperiment
from ladder_operator import names
from ladder_operator.defaults import SiteDefaults, decorate
from ladder_operator.reconcile.actions import (
    Action,
    ApplyShared,
    Create,
    Observed,
    Outcome,
    PostEvent,
    RecordState,
    RemoveAnnotation,
    delete_jobset,
)
from ladder_operator.reconcile.admission import admit, started_status
from ladder_operator.reconcile.experiment import ExperimentObject, read_experiment
from ladder_operator.reconcile.facts import World, observe, size_facts
from ladder_operator.reconcile.finalizer import deletion_outcome, finalizer_actions
from ladder_operator.reconcile.keys import EVAL_HASH_ANNOTATION, RETRY_ANNOTATION
from ladder_operator.reconcile.prepare import PrepareDecision, decide_prepare, prepare_facts
from ladder_operator.reconcile.refusal import refused_edits
from ladder_operator.reconcile.retry import Retried, retry_requested, retry_size
from ladder_operator.reconcile.sizes import Setting, SizeDecision, SizeFacts, decide_size
from ladder_operator.reconcile.state import OperatorState, read_state, with_children
from ladder_operator.reconcile.status import experiment_events, operator_status, owned_wire, size_events
from ladder_operator.reconcile.suspension import suspension_actions
from ladder_operator.reconcile.validate import Invalid, invalid_outcome, validate
from ladder_operator.render import evaluation_jobset, prepare_jobset, render_shared, training_jobset


def reconcile(raw: dict, observed: Observed, now: str, defaults: SiteDefaults | None = None) -> Outcome:
    """Decide the actions and the operator-owned status for one experiment (raw API object).
    `defaults` (the chart's site defaults) fill what the experiment leaves unset."""
    defaults = defaults or SiteDefaults()
    obj = read_experiment(raw)
    checked = validate(raw, defaults)
    if isinstance(checked, Invalid):
        return invalid_outcome(obj, checked, now)
    world = observe(observed)
    state = with_children(read_state(raw), obj.name, world.jobsets.values())
    # A started experiment keeps the defaults it started with (ladder_api.recipe).
    checked, plan = _as_started(keep_started_defaults(checked, state.recipe), state)
    if obj.deleting:
        return deletion_outcome(obj, checked, plan, state)
    return _running(obj, checked, plan, world, state, now, defaults, observed.rejected,
                    observed.data_prepared)


def _as_started(exp: ScalingExperiment, state: OperatorState) -> tuple[ScalingExperiment, Plan]:
    """`exp` and its plan, as the experiment started. Without a recorded recipe (an operator
    before the state annotation recorded one, or the annotation lost) the started JobSets' recipe
    hashes tell which of the versioned defaults it started with (ladder_api.recipe's
    legacy_candidates); when none matches, the spec as it is (and the edit is refused)."""
    started = state.started()
    if state.recipe is not None or not started:
        return exp, expand(exp)
    first = None
    for candidate in legacy_candidates(exp):
        plan = expand(candidate)
        first = first or (candidate, plan)
        widths = {run.width for run in plan.runs}
        if all(plan.run(w).recipe_hash == h for w, h in started.items() if w in widths):
            return candidate, plan
    return first


def _running(
    obj: ExperimentObject, exp: ScalingExperiment, plan: Plan, world: World, state: OperatorState,
    now: str, defaults: SiteDefaults, rejected: str | None, data_prepared: bool | None = None,
) -> Outcome:
    """`rejected`: the API server refused an object of this spec (422): nothing more is created
    until the spec changes, and Degraded says why, once (no retry storm)."""
    spec = exp.spec
    refused = refused_edits(state, plan)
    facts = size_facts(obj, spec.ordered_widths(), plan, world, state)
    retrying = retry_requested(obj, bool(refused), spec.suspend)
    retried = [retry_size(f) if retrying else None for f in facts]
    facts = [r.facts if r else f for r, f in zip(retried, facts, strict=True)]
    kueue = world.workloads is not None
    setting = Setting(obj.name, kueue, spec.scheduling.queue, spec.suspend, bool(refused))
    held = setting.refused or setting.suspend
    prep = decide_prepare(prepare_facts(obj, exp, world, state, data_prepared, retrying), held=held)
    decisions = [decide_size(f, setting) for f in facts]
    blocked = held or bool(rejected) or not prep.ready
    started = admit(decisions, spec.scheduling.max_concurrent, blocked=blocked)
    sizes = [started_status(d.status, setting.kueue, setting.queue) if d.width in started else d.status
             for d in decisions]
    status = operator_status(spec, plan, sizes, obj, refused, now, rejected, defaults.cost, prep.preparation)

    creates = [] if rejected else (
        _prepare_creates(plan, prep, defaults) + _creates(plan, decisions, facts, started, defaults))
    new_state = _next_state(state, plan, decisions, started, shared=bool(creates))
    new_state = replace(new_state, prepare=prep.record)
    actions: list[Action] = []
    if new_state != state:
        actions.append(RecordState(new_state.to_wire()))
    if creates and state.shared != plan.spec_hash:
        actions.append(ApplyShared(tuple(decorate(o, defaults) for o in render_shared(plan))))
    actions += finalizer_actions(obj, exp)
    actions += [RemoveAnnotation(RETRY_ANNOTATION)] if retrying else []
    actions += [a for r in retried if r for a in r.actions]
    actions += [delete_jobset(names.prepare_jobset(obj.name))] if prep.delete else []
    actions += [delete_jobset(_eval_name(d)) for d in decisions if d.delete_evaluation and not rejected]
    actions += [c for c in creates if _is_evaluation(c)]
    actions += suspension_actions(world.jobsets, world.workloads, spec.suspend)
    actions += [c for c in creates if not _is_evaluation(c)]
    actions += _events(obj, facts, retried, status.sizes, started) + experiment_events(obj, status)
    return Outcome(actions, owned_wire(status), status.phase.value, runs=tuple(plan.runs))


def _eval_name(d: SizeDecision) -> str:
    return d.status.eval_jobset or ""


def _is_evaluation(c: Create) -> bool:
    return EVAL_HASH_ANNOTATION in (c.obj["metadata"].get("annotations") or {})


def _prepare_creates(plan: Plan, prep: PrepareDecision, defaults: SiteDefaults) -> list[Create]:
    rendered = prepare_jobset(plan) if prep.create else None
    return [Create(decorate(rendered, defaults))] if rendered else []


def _creates(
    plan: Plan, decisions: Sequence[SizeDecision], facts: Sequence[SizeFacts], started: list[int],
    defaults: SiteDefaults,
) -> list[Create]:
    out = []
    for d, f in zip(decisions, facts, strict=True):
        if d.create_evaluation:
            obj = decorate(evaluation_jobset(plan, d.width), defaults)
            obj["metadata"].setdefault("annotations", {})[EVAL_HASH_ANNOTATION] = f.eval_hash
            out.append(Create(obj))
    out += [Create(decorate(training_jobset(plan, w), defaults)) for w in started]
    return out


def _next_state(
    state: OperatorState, plan: Plan, decisions: Sequence[SizeDecision], started: list[int], *, shared: bool
) -> OperatorState:
    """The record after this pass: each size's decision, the recipe of the sizes started now,
    and the spec the shared objects are applied for."""
    records = {d.width: d.record for d in decisions}
    for width in started:
        records[width] = replace(records[width], started=plan.run(width).recipe_hash)
    new = state.with_sizes(records)
    if started:
        new = replace(new, recipe=plan.runs[0].recipe())
    if shared:
        new = replace(new, shared=plan.spec_hash)
    return new


def _events(
    obj: ExperimentObject, facts: Sequence[SizeFacts], retried: Sequence[Retried | None], sizes, started
) -> list[PostEvent]:
    previous = {f.width: f.previous_phase for f in facts}
    return [r.event for r in retried if r] + size_events(previous, sizes, set(started))
