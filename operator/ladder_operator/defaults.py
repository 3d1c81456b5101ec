"""Site defaults: what the cluster's administrator set in the Helm chart for experiments that leave
a setting unset (images, Kueue queue and priority class, output bucket, the Google service account
of experiments' pods and their ServiceAccount annotations, node selector and tolerations), and the
site's allowlists (ladder_api.policy) that every experiment must keep to.

The chart mounts them as JSON and points LADDER_OPERATOR_DEFAULTS at the file. The CRD carries no
schema defaults, so a field the user did not write arrives unset and is filled here, before the
spec is validated, so the status, hashes and rendered objects all describe what actually runs.
A field the user did write always wins.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ladder_api.errors import UserError
from ladder_api.estimate import Assumptions
from ladder_api.policy import Policy
from ladder_operator import labels as lb

ENV = "LADDER_OPERATOR_DEFAULTS"


@dataclass(frozen=True)
class SiteDefaults:
    trainer_image: str | None = None
    evaluator_image: str | None = None
    pull_policy: str | None = None
    queue: str | None = None
    priority_class: str | None = None
    output_uri: str | None = None
    gcp_service_account: str | None = None
    service_account_annotations: dict = field(default_factory=dict)
    node_selector: dict = field(default_factory=dict)
    tolerations: list = field(default_factory=list)
    policy: Policy = field(default_factory=Policy)
    cost: Assumptions = field(default_factory=Assumptions)

    @classmethod
    def from_json(cls, data: dict) -> SiteDefaults:
        images = data.get("images") or {}
        workloads = data.get("workloads") or {}
        annotations = dict(workloads.get("serviceAccountAnnotations") or {})
        # Charts before the spec's gcpServiceAccount put it among the annotations.
        gcp = workloads.get("gcpServiceAccount") or annotations.pop(lb.WORKLOAD_IDENTITY, None)
        return cls(
            trainer_image=images.get("trainer") or None,
            evaluator_image=images.get("evaluator") or None,
            pull_policy=images.get("pullPolicy") or None,
            queue=data.get("queue") or None,
            priority_class=data.get("priorityClass") or None,
            output_uri=data.get("outputUri") or None,
            gcp_service_account=gcp or None,
            service_account_annotations=annotations,
            node_selector=dict(workloads.get("nodeSelector") or {}),
            tolerations=list(workloads.get("tolerations") or []),
            policy=Policy.from_json(data.get("policy")),
            cost=_cost_assumptions(data.get("costEstimate") or {}),
        )


def _cost_assumptions(data: dict) -> Assumptions:
    """The site's utilisation and price for the cost estimate in experiments' status."""
    default = Assumptions()
    return Assumptions(
        train_mfu=float(data.get("trainMfu") or default.train_mfu),
        eval_mfu=float(data.get("evalMfu") or default.eval_mfu),
        price_per_chip_hour=None if data.get("pricePerChipHour") is None else float(data["pricePerChipHour"]),
    )


def load(path: str | None = None) -> SiteDefaults:
    """Read the defaults file (LADDER_OPERATOR_DEFAULTS); none configured means no defaults."""
    path = path or os.environ.get(ENV)
    if not path:
        return SiteDefaults()
    try:
        return SiteDefaults.from_json(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise UserError(
            f"{ENV}={path}: file not found (mount the chart's defaults ConfigMap there)"
        ) from None
    except (ValueError, AttributeError, TypeError) as err:
        raise UserError(f"{ENV}={path}: not a JSON object of defaults ({err})") from None


def _set_default(spec: dict, path: tuple[str, ...], value) -> None:
    if value is None:
        return
    cur = spec
    for key in path[:-1]:
        nxt = cur.get(key)
        if nxt is None:
            nxt = cur[key] = {}
        if not isinstance(nxt, dict):
            return  # malformed; validation will name it
        cur = nxt
    if cur.get(path[-1]) is None:
        cur[path[-1]] = value


def fill_spec(raw: dict, defaults: SiteDefaults) -> dict:
    """A copy of the experiment with unset fields taken from the site defaults."""
    out = copy.deepcopy(raw)
    spec = out.get("spec")
    if spec is None:
        spec = out["spec"] = {}
    if not isinstance(spec, dict):
        return out
    _set_default(spec, ("resources", "images", "trainer"), defaults.trainer_image)
    _set_default(spec, ("resources", "images", "evaluator"), defaults.evaluator_image)
    _set_default(spec, ("resources", "images", "pullPolicy"), defaults.pull_policy)
    _set_default(spec, ("scheduling", "queue"), defaults.queue)
    _set_default(spec, ("scheduling", "priorityClass"), defaults.priority_class)
    _set_default(spec, ("storage", "outputUri"), defaults.output_uri)
    _set_default(spec, ("resources", "gcpServiceAccount"), defaults.gcp_service_account)
    return out


def decorate(obj: dict, defaults: SiteDefaults) -> dict:
    """Add the site's ServiceAccount annotations and pod placement to one rendered object."""
    if obj.get("kind") == "ServiceAccount" and defaults.service_account_annotations:
        obj = copy.deepcopy(obj)
        ann = obj["metadata"].setdefault("annotations", {})
        for k, v in defaults.service_account_annotations.items():
            ann.setdefault(k, v)
    if obj.get("kind") == "JobSet" and (defaults.node_selector or defaults.tolerations):
        obj = copy.deepcopy(obj)
        for rj in obj["spec"].get("replicatedJobs") or []:
            pod = rj["template"]["spec"]["template"]["spec"]
            selector = pod.setdefault("nodeSelector", {})
            for k, v in defaults.node_selector.items():
                selector.setdefault(k, v)  # the TPU selectors of the slice win
            tolerations = pod.setdefault("tolerations", [])
            tolerations.extend(t for t in defaults.tolerations if t not in tolerations)
    return obj
