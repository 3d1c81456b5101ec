"""Results into the ScalingExperiment's /status with server-side apply.

Why server-side apply and not resourceVersion-preconditioned patches: `status.results` is declared
`x-kubernetes-list-type: map` keyed by `id`, so the API server merges each apply into the list
entry by entry and records which field manager owns which entries. Sixteen evaluator pods (one
field manager each, `ladder-evaluator-c<width>`) can then apply at the same moment without
reading first and without conflicts: nobody's write can erase another's entries, and no retry
loop is needed. A read-modify-write with a resourceVersion precondition is also correct, but every
pod must re-read and resend the whole (growing) list and retry on each 409, which under 16 writers
means O(writers) retries per write and O(results) bytes per attempt. A JSON merge patch without a
precondition replaces the whole list and silently loses the other pods' entries: never that.

The one SSA subtlety: an apply states everything its manager owns, so entries the manager applied
earlier but leaves out are removed. The writer therefore always applies the full set of entries it
owns: those already in the status for its width (an earlier pod of the same size, e.g. before a
restart) plus everything written since.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable

from ladder_api import API_VERSION, KIND
from ladder_api.errors import UserError
from ladder_api.status import Result

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "scalingexperiments"
APPLY_PATCH = "application/apply-patch+yaml"


def field_manager(width: int) -> str:
    return f"ladder-evaluator-c{width}"


class StatusStore:
    """Applies this width's Result entries to <namespace>/<name>'s status subresource."""

    def __init__(self, api_client, namespace: str, name: str, width: int, manager: str | None = None):
        from kubernetes import client as k8s

        self.api = k8s.CustomObjectsApi(api_client)
        self.namespace, self.name, self.width = namespace, name, width
        self.manager = manager or field_manager(width)
        self._owned: dict[str, Result] | None = None
        self._lock = threading.Lock()

    def _get(self) -> dict:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.get_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, self.name
            )
        except ApiException as err:
            if err.status == 404:
                raise UserError(
                    f"ScalingExperiment {self.namespace}/{self.name} not found: the evaluator writes "
                    "into an existing experiment's status (was it deleted?)"
                ) from None
            raise

    def existing(self) -> dict[str, Result]:
        obj = self._get()
        out = {}
        for item in (obj.get("status") or {}).get("results") or []:
            try:
                r = Result.model_validate(item)
            except ValueError:
                continue
            out[r.id] = r
        return out

    def _ensure_owned(self) -> dict[str, Result]:
        if self._owned is None:
            self._owned = {k: r for k, r in self.existing().items() if r.width == self.width}
        return self._owned

    def body(self, results: Iterable[Result]) -> dict:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "status": {"results": [r.to_wire() for r in results]},
        }

    def write(self, results: Iterable[Result]) -> None:
        with self._lock:
            owned = self._ensure_owned()
            owned.update({r.id: r for r in results})
            body = self.body(owned[k] for k in sorted(owned))
            # force: this pod is the only writer of its width's entries; if a previous pod of the
            # same size ran under another manager name, take its entries over rather than fail.
            self.api.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, self.name, json.loads(json.dumps(body)),
                field_manager=self.manager, force=True, _content_type=APPLY_PATCH,
            )


def api_client_from_environment():
    """In a pod: the service account; elsewhere: KUBECONFIG (tests, manual runs)."""
    import os

    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config()
        return k8s.ApiClient()
    try:
        # Pass KUBECONFIG explicitly: the client reads it once, when kubernetes.config is first
        # imported, so a later change of the variable would otherwise be ignored.
        return k8s_config.new_client_from_config(config_file=os.environ.get("KUBECONFIG") or None)
    except k8s_config.ConfigException as err:
        raise UserError(
            f"--status cluster needs a cluster: no in-cluster config and no kubeconfig ({err})"
        ) from None
