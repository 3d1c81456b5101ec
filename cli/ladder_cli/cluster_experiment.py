"""A ScalingExperiment on a cluster, as `ladder status` and `ladder report` read it: through the
kubeconfig (as kubectl does), its status from the API server and its files from its storage root.

The storage root is where the status says (`status.storageRoot`, written by the operator, which
also filled in the chart's site defaults), else `<spec.storage.outputUri>/<name>` of the spec as
stored. The results of record are there, never in the status, so a cluster experiment reports
exactly as a `ladder run` directory does.
"""

from __future__ import annotations

from dataclasses import dataclass

from ladder_api import artifacts, storage
from ladder_api.errors import SpecError, UserError
from ladder_api.plan import RunConfig, expand
from ladder_api.spec import ScalingExperiment
from ladder_api.status import ScalingExperimentStatus

USER_AGENT = "ladder-cli"


@dataclass
class ClusterExperiment:
    name: str
    namespace: str
    raw: dict
    status: ScalingExperimentStatus
    root: str

    def runs(self) -> list[RunConfig]:
        """The run configs recorded beside the files (what the pods ran), else the spec's."""
        runs = artifacts.read_run_configs(self.root)
        if runs:
            return runs
        try:
            exp = ScalingExperiment.model_validate({k: self.raw.get(k) for k in
                                                    ("apiVersion", "kind", "metadata", "spec")})
        except ValueError as err:
            raise SpecError(f"{self.namespace}/{self.name}", [str(err)]) from None
        return expand(exp, root=self.root).runs


def fetch(name: str, namespace: str | None, kubeconfig: str | None, context: str | None) -> ClusterExperiment:
    from ladder_kube.client import Client
    from ladder_kube.credentials import load_credentials
    from ladder_kube.errors import ApiError
    from ladder_kube.resources import EXPERIMENT
    from ladder_operator.reconcile.experiment import lenient_status

    creds = load_credentials(kubeconfig, context)
    ns = namespace or creds.default_namespace
    client = Client(creds, user_agent=USER_AGENT)
    try:
        raw = client.get(EXPERIMENT.path(ns, name))
    except ApiError as err:
        if err.status == 404:
            raise UserError(f"ScalingExperiment {ns}/{name} not found (kubectl get sx -n {ns})") from None
        raise UserError(f"cannot read ScalingExperiment {ns}/{name} from {creds.server}: {err}") from None
    finally:
        client.close()
    wire = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    status = lenient_status(wire)
    root = status.storage_root or _spec_root(raw, name)
    return ClusterExperiment(name, ns, raw, status, root)


def _spec_root(raw: dict, name: str) -> str:
    out = ((raw.get("spec") or {}).get("storage") or {}).get("outputUri")
    if not out:
        raise UserError(
            f"{name}: the status does not say where its files are yet (status.storageRoot) and the spec "
            "sets no storage.outputUri; wait for the operator to reconcile it"
        )
    return storage.join(out, name)
