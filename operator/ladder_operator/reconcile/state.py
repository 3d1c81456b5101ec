"""The operator's durable memory: the `ladder.dev/operator-state` annotation on the experiment.

What the cluster shows is not enough to decide: finished JobSets expire
(ttlSecondsAfterFinished) and the status can be rewritten by anyone with access to it. So the
operator records, before it creates anything, the recipe the started sizes were trained with and
the evaluation grid each size's evaluation JobSet was created for; and, once it sees them, the
terminal outcomes: training completed or failed, evaluation done for a grid. A finished size is
never trained again, even when its JobSets are gone and the status lost its sizes.

The JobSets stand in for a lost annotation: a training JobSet carries its recipe hash and an
evaluation JobSet its grid hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from ladder_api.recipe import recipe_section
from ladder_operator import names
from ladder_operator.reconcile.children import JobSetView
from ladder_operator.reconcile.keys import STATE_ANNOTATION

RECORDS = ("started", "trained", "evaluated", "done")


@dataclass(frozen=True)
class SizeRecord:
    """What the record says about one size."""

    started: str | None = None  # recipe hash its training JobSet was (or is about to be) created with
    trained: str | None = None  # "completed" or "failed", once seen
    evaluated: str | None = None  # evaluation hash its evaluation JobSet was created for
    done: str | None = None  # evaluation hash whose evaluation completed


@dataclass(frozen=True)
class OperatorState:
    recipe: dict | None = None
    sizes: Mapping[int, SizeRecord] = field(default_factory=dict)
    shared: str | None = None  # spec hash the shared objects (ConfigMap, RBAC) were applied for
    prepare: str | None = None  # the data preparation's outcome once seen: completed or failed

    def size(self, width: int) -> SizeRecord:
        return self.sizes.get(width) or SizeRecord()

    def started(self) -> dict[int, str]:
        return {w: r.started for w, r in sorted(self.sizes.items()) if r.started}

    def with_sizes(self, records: Mapping[int, SizeRecord]) -> OperatorState:
        merged = {**self.sizes, **records}
        return replace(self, sizes={w: r for w, r in sorted(merged.items()) if r != SizeRecord()})

    def to_wire(self) -> dict:
        wire: dict = {"recipe": self.recipe, "shared": self.shared}
        if self.prepare:  # absent without a preparation: the annotation is what it was before
            wire["prepare"] = self.prepare
        for key in RECORDS:
            wire[key] = {str(w): getattr(r, key) for w, r in sorted(self.sizes.items()) if getattr(r, key)}
        return wire


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


def read_state(raw: dict) -> OperatorState:
    text = ((raw.get("metadata") or {}).get("annotations") or {}).get(STATE_ANNOTATION)
    try:
        wire = json.loads(text) if text else {}
    except ValueError:
        wire = {}
    wire = wire if isinstance(wire, dict) else {}
    sizes: dict[int, dict] = {}
    for key in RECORDS:
        entries = wire.get(key)
        for width, value in (entries.items() if isinstance(entries, dict) else ()):
            if str(width).isdigit() and isinstance(value, str):
                sizes.setdefault(int(width), {})[key] = value
    shared, prepare = wire.get("shared"), wire.get("prepare")
    return OperatorState(
        recipe=recorded_recipe(wire.get("recipe")),
        sizes={w: SizeRecord(**r) for w, r in sorted(sizes.items())},
        shared=shared if isinstance(shared, str) else None,
        prepare=prepare if prepare in ("completed", "failed") else None,
    )


def with_children(state: OperatorState, experiment: str, jobsets: Iterable[JobSetView]) -> OperatorState:
    """Fill what the record lacks from what the JobSets say about themselves."""
    found: dict[int, SizeRecord] = {}
    for js in jobsets:
        if not (js.width or "").isdigit():
            continue
        width = int(js.width)
        record = found.get(width) or state.size(width)
        if js.name == names.training_jobset(experiment, width) and js.recipe_hash and not record.started:
            record = replace(record, started=js.recipe_hash)
        if js.name == names.evaluation_jobset(experiment, width) and js.eval_hash and not record.evaluated:
            record = replace(record, evaluated=js.eval_hash)
        found[width] = record
    return state.with_sizes(found)
