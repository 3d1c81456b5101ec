"""Step 1: validate the experiment (site defaults filled in); an invalid one gets the Invalid status.

Validation is the schema, then ladder_api.validation for a cluster with the site's allowlists: the
same checks `ladder validate --cluster` makes (the per-chip memory plan, outputs and data a pod
can reach, ...), so nothing is started that can only fail after TPU admission.

An invalid spec stops everything new, but the status keeps what is known: a short-lived bad edit
(a typo, a width that is not a multiple of the norm groups) must not erase the sizes that trained,
or the server-side apply of a status without them would delete them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from ladder_api.conditions import invalid_status
from ladder_api.errors import describe
from ladder_api.plan import CODE_VERSION
from ladder_api.spec import ScalingExperiment
from ladder_api.validation import Target, problems
from ladder_operator.defaults import SiteDefaults, fill_spec
from ladder_operator.reconcile.actions import Action, Outcome, PostEvent, SetFinalizers
from ladder_operator.reconcile.experiment import ExperimentObject
from ladder_operator.reconcile.keys import FINALIZER
from ladder_operator.reconcile.status import owned_wire

TOP_LEVEL = ("metadata", "spec", "apiVersion", "kind")


@dataclass(frozen=True)
class Invalid:
    message: str  # every problem, each naming its field (spec.training.learningRate: ...)


def validate(raw: dict, defaults: SiteDefaults) -> ScalingExperiment | Invalid:
    try:
        filled = fill_spec({k: raw.get(k) for k in ("apiVersion", "kind", "metadata", "spec")}, defaults)
        exp = ScalingExperiment.model_validate(filled)
    except ValidationError as err:
        found = describe(err)
        return Invalid("; ".join(p if p.startswith(TOP_LEVEL) else f"spec.{p}" for p in found))
    found = problems(exp, Target.cluster, defaults.policy)
    return Invalid("; ".join(map(str, found))) if found else exp


def without_finalizer(finalizers: tuple[str, ...]) -> SetFinalizers:
    return SetFinalizers(tuple(f for f in finalizers if f != FINALIZER))


def invalid_outcome(exp: ExperimentObject, invalid: Invalid, now: str) -> Outcome:
    """One Warning Event per distinct problem (none when reconciled again unchanged); deletion
    is never blocked by a bad spec."""
    actions: list[Action] = []
    if exp.deleting and FINALIZER in exp.finalizers:
        actions.append(without_finalizer(exp.finalizers))
    if exp.phase != "Invalid" or exp.status.message != invalid.message:
        actions.append(PostEvent("Warning", "InvalidSpec", invalid.message))
    previous = exp.status if exp.has_status else None
    status = invalid_status(invalid.message, previous, now=now, generation=exp.generation)
    status.code_version = CODE_VERSION
    return Outcome(actions, owned_wire(status), "Invalid")
