"""reconcile(experiment, observed) -> Outcome: what the operator should do next, and the status.

Pure and level-based: the same inputs always give the same answer, whatever happened before, so a
restarted (or SIGKILLed) operator converges to the same end state. Everything it needs to
remember beyond what the cluster shows lives in the cluster too:

- status.sizes[].phase remembers finished sizes after their JobSets expire (ttlSecondsAfterFinished);
- the annotation `ladder.dev/operator-state` on the experiment records, before anything is
  created, the recipe the started sizes were trained with and the evaluation grid each size was
  (or is being) evaluated on. That is what lets an edit be refused with the field named, and
  an extended evaluation grid re-run evaluation of finished sizes.

The I/O shell (handlers.py) executes the actions in order and then server-side-applies
`Outcome.status` with the field manager `ladder-operator`. That status holds only the fields the
operator owns; pods own results and training progress, and SSA keeps both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from ladder_api.errors import describe
from ladder_api.frontier import summarize
from ladder_api.grid import evaluation_hash, fid_metric
from ladder_api.plan import CODE_VERSION, expand, join_uri
from ladder_api.recipe import recipe_diff, recipe_section
from ladder_api.spec import CheckpointRetention, ScalingExperiment
from ladder_api.status import Result
from ladder_operator import labels as lb
from ladder_operator import names
from ladder_operator.defaults import SiteDefaults, decorate, fill_spec
from ladder_operator.render import evaluation_jobset, render_shared, training_jobset

STATE_ANNOTATION = "ladder.dev/operator-state"
RETRY_ANNOTATION = "ladder.dev/retry-failed"  # `kubectl annotate sx NAME ladder.dev/retry-failed=1`
EVAL_HASH_ANNOTATION = "ladder.dev/evaluation-hash"
FINALIZER = "ladder.dev/checkpoint-cleanup"
FIELD_MANAGER = "ladder-operator"

# --- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Create:
    """Create an object; 409 AlreadyExists counts as done (a restart never duplicates)."""

    obj: dict


@dataclass(frozen=True)
class ApplyShared:
    """Server-side apply the per-experiment objects (ConfigMap, RBAC): create or update."""

    objs: tuple[dict, ...]


@dataclass(frozen=True)
class SetSuspend:
    """JobSet spec.suspend (kind 'jobset') or Kueue Workload spec.active (kind 'workload')."""

    kind: str
    name: str
    suspend: bool


@dataclass(frozen=True)
class Delete:
    api_version: str
    plural: str
    name: str


@dataclass(frozen=True)
class RecordState:
    """Write the operator-state annotation (before the objects it describes are created)."""

    state: dict


@dataclass(frozen=True)
class PostEvent:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class SetFinalizers:
    finalizers: tuple[str, ...]


@dataclass(frozen=True)
class RemoveAnnotation:
    key: str


@dataclass(frozen=True)
class CleanupCheckpoints:
    """Delete each size's checkpoint prefix (retention: delete); metrics, samples and results
    stay, they are small and they are the study's outcome."""

    uris: tuple[str, ...]


Action = (
    Create
    | ApplyShared
    | SetSuspend
    | Delete
    | RecordState
    | PostEvent
    | SetFinalizers
    | CleanupCheckpoints
    | RemoveAnnotation
)


@dataclass
class Observed:
    """What exists now: this experiment's JobSets by name and, when the Kueue API is served,
    their Workloads keyed by the owning JobSet's name (None: no Kueue)."""

    jobsets: dict[str, dict] = field(default_factory=dict)
    workloads: dict[str, dict] | None = None


@dataclass
class Outcome:
    actions: list[Action]
    status: dict  # the operator-owned part of .status, wire form
    phase: str


# --- helpers ------------------------------------------------------------------------------------


def _cond(js: dict, ctype: str) -> dict | None:
    for c in (js.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return c
    return None


def jobset_state(js: dict | None) -> str:
    """absent, completed, failed, suspended or active."""
    if js is None:
        return "absent"
    if _cond(js, "Completed") or (js.get("status") or {}).get("terminalState") == "Completed":
        return "completed"
    if _cond(js, "Failed") or (js.get("status") or {}).get("terminalState") == "Failed":
        return "failed"
    if (js.get("spec") or {}).get("suspend"):
        return "suspended"
    return "active"


def workload_admitted(wl: dict | None) -> bool:
    if wl is None:
        return False
    st = wl.get("status") or {}
    if st.get("admission"):
        return True
    return any(
        c.get("type") in ("Admitted",) and c.get("status") == "True" for c in st.get("conditions") or []
    )


def read_state(raw: dict) -> dict:
    text = ((raw.get("metadata") or {}).get("annotations") or {}).get(STATE_ANNOTATION)
    try:
        state = json.loads(text) if text else {}
    except ValueError:
        state = {}
    state["recipe"] = recorded_recipe(state.get("recipe"))
    state.setdefault("started", {})
    state.setdefault("evaluated", {})
    state.setdefault("shared", None)
    return state


def recorded_recipe(value) -> dict | None:
    """The recipe recorded in the state annotation, as ladder_api.recipe's flat paths. Operators
    before the flat form recorded {"ladder": {...}, "data": {...}, "training": {...}} wire
    sections, non-recipe fields (sharding, checkpoint cadence) included: those are dropped so an
    upgrade compares like with like."""
    if not isinstance(value, dict):
        return None
    if set(value) <= {"ladder", "data", "training"} and all(isinstance(v, dict) for v in value.values()):
        flat: dict = {}
        for section, wire in value.items():
            flat.update(recipe_section(section, wire))
        return dict(sorted(flat.items()))
    return value


def event_name(experiment: str, uid: str, generation: int | None, reason: str, message: str) -> str:
    """Deterministic Event names: posting the same transition twice (after a crash between the
    Event and the status write) is a 409, not a duplicate. The generation is part of the name, so
    the same transition after a spec change (suspend, resume, suspend) is a new Event."""
    digest = hashlib.sha256(f"{uid}/{generation}/{reason}/{message}".encode()).hexdigest()[:16]
    return names.fit(experiment, f".{digest}")


def _condition(
    ctype: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    previous: dict[str, dict],
    now: str,
) -> dict:
    value = "True" if status else "False"
    prev = previous.get(ctype) or {}
    since = (
        prev.get("lastTransitionTime")
        if prev.get("status") == value and prev.get("lastTransitionTime")
        else now
    )
    out = {"type": ctype, "status": value, "reason": reason, "message": message, "lastTransitionTime": since}
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def _just_started(kueue: bool, queue: str) -> tuple[str, str | None]:
    """The phase (and message) of a size whose training JobSet exists and is not yet admitted;
    the same words whether it was created in this reconcile or an earlier one, so the status
    written right after creating it does not change on the next pass."""
    if kueue:
        return "Queued", f"waiting for Kueue to admit it in queue {queue!r}"
    return "Training", None


# --- the decision -------------------------------------------------------------------------------


def reconcile(raw: dict, observed: Observed, now: str, defaults: SiteDefaults | None = None) -> Outcome:
    """Decide the actions and the operator-owned status for one experiment (raw API object).
    `defaults` (the chart's site defaults) fill what the experiment leaves unset."""
    defaults = defaults or SiteDefaults()
    meta = raw.get("metadata") or {}
    name, _uid = meta.get("name", ""), meta.get("uid", "")
    generation = meta.get("generation")
    current = raw.get("status") or {}
    prev_conditions = {c.get("type"): c for c in current.get("conditions") or [] if isinstance(c, dict)}
    prev_phase = current.get("phase")
    deleting = bool(meta.get("deletionTimestamp"))
    finalizers = list(meta.get("finalizers") or [])
    actions: list[Action] = []

    try:
        filled = fill_spec({k: raw.get(k) for k in ("apiVersion", "kind", "metadata", "spec")}, defaults)
        exp = ScalingExperiment.model_validate(filled)
    except ValidationError as err:
        problems = describe(err)
        message = "; ".join(
            f"spec.{p}" if not p.startswith(("metadata", "spec", "apiVersion", "kind")) else p
            for p in problems
        )
        if deleting and FINALIZER in finalizers:
            actions.append(SetFinalizers(tuple(f for f in finalizers if f != FINALIZER)))
        if prev_phase != "Invalid" or current.get("message") != message:
            actions.append(PostEvent("Warning", "InvalidSpec", message))
        status = {
            "phase": "Invalid",
            "message": message,
            "observedGeneration": generation,
            "codeVersion": CODE_VERSION,
            "conditions": [
                _condition("Ready", False, "InvalidSpec", message, generation, prev_conditions, now),
                _condition(
                    "Progressing",
                    False,
                    "InvalidSpec",
                    "fix the spec; nothing runs until then",
                    generation,
                    prev_conditions,
                    now,
                ),
                _condition("Degraded", True, "InvalidSpec", message, generation, prev_conditions, now),
                _condition("Suspended", False, "NotSuspended", "", generation, prev_conditions, now),
            ],
        }
        return Outcome(actions, status, "Invalid")

    spec = exp.spec
    plan = expand(exp)
    state = read_state(raw)
    # The training JobSets carry their recipe hash too: if the annotation was lost (edited away),
    # what exists still says which sizes started and with what.
    for js_name, js in observed.jobsets.items():
        js_meta = js.get("metadata") or {}
        width = (js_meta.get("labels") or {}).get(lb.WIDTH)
        recipe_h = (js_meta.get("annotations") or {}).get(lb.RECIPE_HASH)
        if width and recipe_h and js_name == names.training_jobset(name, int(width)):
            state["started"].setdefault(width, recipe_h)
    retention_delete = spec.training.checkpoint.retention is CheckpointRetention.delete

    # Deletion: children go by owner references; only the checkpoint finalizer is ours to handle.
    if deleting:
        if FINALIZER in finalizers:
            if retention_delete:
                base = join_uri(spec.storage.output_uri, name)
                widths = sorted({*spec.ladder.widths, *(int(w) for w in state["started"])})
                uris = tuple(
                    plan.run(w).paths.checkpoints
                    if w in spec.ladder.widths
                    else join_uri(base, f"c{w}", "checkpoints")
                    for w in widths
                )
                actions.append(CleanupCheckpoints(uris))
            actions.append(SetFinalizers(tuple(f for f in finalizers if f != FINALIZER)))
        return Outcome(actions, {}, prev_phase or "Pending")
    if retention_delete and FINALIZER not in finalizers:
        actions.append(SetFinalizers((*finalizers, FINALIZER)))
    elif not retention_delete and FINALIZER in finalizers:
        actions.append(SetFinalizers(tuple(f for f in finalizers if f != FINALIZER)))

    # Refuse edits that would change what a started size means (ladder_api.recipe: the same rule
    # as `ladder run`). The recorded recipe names the fields; without it (the annotation was
    # lost) the started JobSets' recipe hashes still tell a change apart.
    recipe = plan.runs[0].recipe()
    refused: list[str] = []
    if state["started"] and state["recipe"] is not None:
        refused = recipe_diff(state["recipe"], recipe)
    elif state["started"]:
        for w, h in state["started"].items():
            now_h = plan.run(int(w)).recipe_hash if int(w) in spec.ladder.widths else h
            if now_h != h and not refused:
                refused = [f"the recipe of size c{w} changed (recipe hash {h} -> {now_h})"]

    prev_sizes = {s.get("width"): s for s in current.get("sizes") or [] if isinstance(s, dict)}
    kueue = observed.workloads is not None
    sizes: list[dict] = []
    events: list[PostEvent] = []
    active = 0
    to_start: list[int] = []
    new_state = json.loads(json.dumps(state))
    shared_needed = False

    retry = RETRY_ANNOTATION in (meta.get("annotations") or {}) and not refused and not spec.suspend
    if retry:
        actions.append(RemoveAnnotation(RETRY_ANNOTATION))

    for width in spec.ordered_widths():
        train_name = names.training_jobset(name, width)
        eval_name = names.evaluation_jobset(name, width)
        js, ejs = observed.jobsets.get(train_name), observed.jobsets.get(eval_name)
        prev = prev_sizes.get(width) or {}
        prev_size_phase = prev.get("phase", "Pending")
        started = str(width) in state["started"]
        t_state, e_state = jobset_state(js), jobset_state(ejs)
        if retry and (prev_size_phase == "Failed" or "failed" in (t_state, e_state)):
            # Retry on request: the failed JobSet goes, the size queues again behind maxConcurrent
            # (training) or evaluates again (the evaluator skips results already present).
            eval_failed = e_state == "failed" or (
                t_state != "failed" and str(prev.get("message") or "").startswith("evaluation failed")
            )
            if eval_failed:
                if ejs is not None:
                    actions.append(Delete("jobset.x-k8s.io/v1alpha2", "jobsets", eval_name))
                ejs, e_state, prev_size_phase = None, "absent", "Evaluating"
                new_state["evaluated"].pop(str(width), None)
                if t_state == "absent":
                    t_state = "completed"
            else:
                if js is not None:
                    actions.append(Delete("jobset.x-k8s.io/v1alpha2", "jobsets", train_name))
                js, t_state, prev_size_phase, started = None, "absent", "Pending", False
                new_state["started"].pop(str(width), None)
            prev = {}
            events.append(PostEvent("Normal", "SizeRetried", f"size c{width}: retrying after a failure"))
        entry: dict = {"width": width, "jobset": train_name}
        restarts = int(((js or {}).get("status") or {}).get("restarts") or prev.get("restarts") or 0)
        entry["restarts"] = restarts
        # A finished JobSet may have expired: the phase in the status remembers it.
        if t_state == "absent" and prev_size_phase in ("Evaluating", "Succeeded"):
            t_state = "completed"
        elif t_state == "absent" and prev_size_phase == "Failed" and started:
            t_state = "failed"
        e_hash = evaluation_hash(plan.run(width).evaluation)
        phase, message = "Pending", None
        if t_state == "absent":
            if started and not refused and not spec.suspend:
                to_start.append(width)  # recorded but never created (a crash in between)
                active += 1
                phase, message = _just_started(kueue, spec.scheduling.queue)
            else:
                phase = "Pending"
        elif t_state == "failed":
            cond = _cond(js, "Failed") if js else None
            reason = (cond or {}).get("reason") or "JobSetFailed"
            detail = (cond or {}).get("message") or prev.get("message") or "the training JobSet failed"
            phase, message = "Failed", f"{reason}: {detail} (restarts: {restarts})"
            if js is None and prev.get("message"):
                message = prev["message"]
        elif t_state in ("active", "suspended"):
            active += 1
            wl = (observed.workloads or {}).get(train_name) if kueue else None
            if spec.suspend:
                phase, message = "Suspended", "spec.suspend is true"
            elif kueue and not workload_admitted(wl):
                phase, message = _just_started(True, spec.scheduling.queue)
            elif t_state == "suspended":
                phase, message = "Queued", "the JobSet is suspended"
            else:
                phase = "Training"
        elif t_state == "completed":
            entry["evalJobset"] = eval_name
            evaluated = state["evaluated"].get(str(width))
            if e_state == "absent" and prev_size_phase == "Succeeded" and evaluated == e_hash:
                e_state = "completed"
            if (
                ejs is not None
                and ejs["metadata"].get("annotations", {}).get(EVAL_HASH_ANNOTATION) not in (None, e_hash)
                and e_state in ("completed", "failed")
                and not refused
            ):
                # The grid was extended: evaluate again (the evaluator skips ids already present).
                actions.append(Delete("jobset.x-k8s.io/v1alpha2", "jobsets", eval_name))
                phase, message = "Evaluating", "evaluation grid changed; re-evaluating"
            elif e_state == "absent":
                if spec.suspend:
                    phase, message = "Suspended", "spec.suspend is true"
                elif refused:
                    phase, message = "Evaluating", "waiting: the spec edit was refused"
                else:
                    phase = "Evaluating"
                    obj = decorate(evaluation_jobset(plan, width), defaults)
                    obj["metadata"].setdefault("annotations", {})[EVAL_HASH_ANNOTATION] = e_hash
                    new_state["evaluated"][str(width)] = e_hash
                    shared_needed = True
                    actions.append(Create(obj))
            elif e_state == "completed":
                if evaluated not in (None, e_hash) and not refused:
                    phase, message = "Evaluating", "evaluation grid changed; re-evaluating"
                    actions.append(Delete("jobset.x-k8s.io/v1alpha2", "jobsets", eval_name))
                else:
                    phase = "Succeeded"
            elif e_state == "failed":
                cond = _cond(ejs, "Failed") or {}
                phase = "Failed"
                message = (
                    f"evaluation failed: {cond.get('reason') or 'JobSetFailed'}: {cond.get('message') or ''}"
                )
                message = message.rstrip(": ")
            else:
                phase = "Suspended" if spec.suspend else "Evaluating"
        entry["phase"] = phase
        if message:
            entry["message"] = message
        if phase != prev_size_phase:
            etype = "Warning" if phase == "Failed" else "Normal"
            text = f"size c{width}: {prev_size_phase} -> {phase}" + (f" ({message})" if message else "")
            events.append(PostEvent(etype, f"Size{phase}", text))
        sizes.append(entry)

    # Start sizes in order while fewer than maxConcurrent train.
    suspend = spec.suspend
    if not refused and not suspend:
        for entry in sizes:
            if active >= spec.scheduling.max_concurrent:
                break
            if entry["phase"] == "Pending" and str(entry["width"]) not in new_state["started"]:
                to_start.append(entry["width"])
                active += 1
                entry["phase"], message = _just_started(kueue, spec.scheduling.queue)
                if message:
                    entry["message"] = message
                events.append(
                    PostEvent("Normal", "SizeStarted", f"size c{entry['width']}: training JobSet created")
                )
    creates: list[Action] = []
    for width in to_start:
        new_state["started"][str(width)] = plan.run(width).recipe_hash
        new_state["recipe"] = recipe
        obj = decorate(training_jobset(plan, width), defaults)
        creates.append(Create(obj))
        shared_needed = True

    # Suspend and resume what runs.
    for js_name, js in sorted(observed.jobsets.items()):
        st = jobset_state(js)
        if st in ("completed", "failed"):
            continue
        wl = (observed.workloads or {}).get(js_name) if kueue else None
        if suspend:
            if st != "suspended":
                actions.append(SetSuspend("jobset", js_name, True))
            if wl is not None and (wl.get("spec") or {}).get("active", True):
                actions.append(SetSuspend("workload", (wl.get("metadata") or {}).get("name"), True))
        else:
            if wl is not None and (wl.get("spec") or {}).get("active", True) is False:
                actions.append(SetSuspend("workload", (wl.get("metadata") or {}).get("name"), False))
            elif not kueue and st == "suspended":
                actions.append(SetSuspend("jobset", js_name, False))

    out_actions: list[Action] = []
    if new_state != state:
        if shared_needed and new_state.get("shared") != plan.spec_hash:
            new_state["shared"] = plan.spec_hash
        out_actions.append(RecordState(new_state))
    if shared_needed and state.get("shared") != plan.spec_hash:
        out_actions.append(ApplyShared(tuple(decorate(o, defaults) for o in render_shared(plan))))
    out_actions += actions + creates

    # Summary, phase and conditions.
    results = []
    for r in current.get("results") or []:
        try:
            results.append(Result.model_validate(r))
        except ValidationError:
            continue
    done = sum(1 for s in sizes if s["phase"] == "Succeeded")
    summary = summarize(results, done, len(sizes), fid_metric(spec.evaluation.fid_features)).to_wire()
    phases = [s["phase"] for s in sizes]
    failed = [s for s in sizes if s["phase"] == "Failed"]
    if suspend:
        phase, msg = "Suspended", "spec.suspend is true: JobSets are suspended"
    elif all(p == "Succeeded" for p in phases):
        phase, msg = "Succeeded", f"all {len(sizes)} sizes trained and evaluated"
    elif all(p in ("Succeeded", "Failed") for p in phases):
        phase, msg = "Failed", f"{len(failed)} of {len(sizes)} sizes failed"
    elif all(p in ("Pending", "Queued") for p in phases) and not refused:
        phase, msg = "Pending", "waiting for the first size to be admitted"
    else:
        phase, msg = "Running", f"{done}/{len(sizes)} sizes done"
    detail = ", ".join(f"c{s['width']} {s['phase']}" for s in sizes)
    g = generation
    if refused:
        degraded = _condition(
            "Degraded",
            True,
            "SpecChangeRefused",
            "refused: " + "; ".join(refused) + ". These fields fix what a started size "
            "means; revert them (old runs are untouched) or create a new experiment.",
            g,
            prev_conditions,
            now,
        )
    elif failed:
        degraded = _condition(
            "Degraded",
            True,
            "SizeFailed",
            "; ".join(f"c{s['width']}: {s.get('message', 'failed')}" for s in failed),
            g,
            prev_conditions,
            now,
        )
    else:
        degraded = _condition("Degraded", False, "AsExpected", "", g, prev_conditions, now)
    conditions = [
        _condition(
            "Ready",
            phase == "Succeeded",
            "AllSizesEvaluated" if phase == "Succeeded" else phase,
            msg,
            g,
            prev_conditions,
            now,
        ),
        _condition(
            "Progressing",
            phase in ("Pending", "Running") and not refused,
            "SizesRunning"
            if phase in ("Pending", "Running") and not refused
            else ("SpecChangeRefused" if refused else phase),
            detail,
            g,
            prev_conditions,
            now,
        ),
        degraded,
        _condition(
            "Suspended",
            suspend,
            "SuspendedBySpec" if suspend else "NotSuspended",
            msg if suspend else "",
            g,
            prev_conditions,
            now,
        ),
    ]
    if refused and (prev_conditions.get("Degraded") or {}).get("reason") != "SpecChangeRefused":
        events.append(PostEvent("Warning", "SpecChangeRefused", degraded["message"]))
    if phase != prev_phase:
        events.append(PostEvent("Normal", f"Experiment{phase}", f"{prev_phase or 'New'} -> {phase}: {msg}"))
    status = {
        "phase": phase,
        "message": msg,
        "observedGeneration": generation,
        "specHash": plan.spec_hash,
        "codeVersion": CODE_VERSION,
        "images": {"trainer": spec.resources.images.trainer, "evaluator": spec.resources.images.evaluator},
        "conditions": conditions,
        "sizes": sizes,
        "summary": summary,
    }
    return Outcome(out_actions + list(events), status, phase)


def is_ours(obj: dict) -> str | None:
    """The experiment a child object belongs to (by label), or None."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(lb.EXPERIMENT)
