"""Progress into the experiment's status.sizes[width], by server-side apply (cluster only).

The patch body is built by a pure function; the trainer owns only the fields it sets (step,
totalSteps, loss, checkpointStep, checkpointUri) under its own field manager
`ladder-trainer-c<width>`, so it never fights the operator (which owns phase, jobset, restarts)
over a field. `sizes` is a list-map keyed by width, so the entry merges into the operator's.
"""

from __future__ import annotations

import logging
import os

from ladder_api import API_VERSION, KIND

log = logging.getLogger(__name__)

GROUP, VERSION = API_VERSION.split("/")
PLURAL = "scalingexperiments"


def field_manager(width: int) -> str:
    return f"ladder-trainer-c{width}"


def size_status_patch(
    name: str,
    namespace: str,
    width: int,
    *,
    step: int,
    total_steps: int,
    loss: float | None = None,
    checkpoint_step: int | None = None,
    checkpoint_uri: str | None = None,
) -> dict:
    """The apply-patch body for one size's training progress (camelCase, as on the wire)."""
    entry: dict = {"width": int(width), "step": int(step), "totalSteps": int(total_steps)}
    if loss is not None:
        entry["loss"] = float(loss)
    if checkpoint_step is not None:
        entry["checkpointStep"] = int(checkpoint_step)
        entry["checkpointUri"] = checkpoint_uri
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "status": {"sizes": [entry]},
    }


def in_cluster(env=os.environ) -> bool:
    return bool(env.get("KUBERNETES_SERVICE_HOST"))


class ClusterReporter:
    """Applies size_status_patch bodies; a failed report is logged, never fatal to training."""

    def __init__(self, name: str, namespace: str, width: int, api=None):
        if api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                # KUBECONFIG is passed explicitly: the client reads it only once, at import.
                config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None)
            api = client.CustomObjectsApi()
        self.api, self.name, self.namespace, self.width = api, name, namespace, width

    def report(self, **fields) -> bool:
        body = size_status_patch(self.name, self.namespace, self.width, **fields)
        try:
            self.api.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, PLURAL, self.name,
                body=body,
                field_manager=field_manager(self.width),
                force=True,
                _content_type="application/apply-patch+yaml",
            )
            return True
        except Exception as err:  # noqa: BLE001 - progress reports must not kill a training run
            log.warning("status report for %s/%s c%d failed: %s", self.namespace, self.name, self.width, err)
            return False
