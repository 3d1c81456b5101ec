"""The resources Ladder reads and writes: group, version, plural and kind, and their REST paths.

The one place for these names: the ScalingExperiment's come from `ladder_api` (which generates
the CRD), JobSet's version is the one the chart requires, and Kueue's Workload version is
discovered at start (`Client.preferred_version`), since clusters serve v1beta1 or v1beta2.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ladder_api import GROUP, KIND, PLURAL, VERSION


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core API
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def at(self, version: str) -> Resource:
        return replace(self, version=version)

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        return resource_path(self.api_version, self.plural, namespace, name, sub)


EXPERIMENT = Resource(GROUP, VERSION, PLURAL, KIND)
JOBSET = Resource("jobset.x-k8s.io", "v1alpha2", "jobsets", "JobSet")
KUEUE_GROUP = "kueue.x-k8s.io"
WORKLOAD = Resource(KUEUE_GROUP, "v1beta2", "workloads", "Workload")  # .at(discovered version)
CONFIG_MAP = Resource("", "v1", "configmaps", "ConfigMap")
SERVICE_ACCOUNT = Resource("", "v1", "serviceaccounts", "ServiceAccount")
EVENT = Resource("", "v1", "events", "Event")
ROLE = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLE_BINDING = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease")  # the operator's leader election

KNOWN = (EXPERIMENT, JOBSET, WORKLOAD, CONFIG_MAP, SERVICE_ACCOUNT, EVENT, ROLE, ROLE_BINDING, LEASE)
_BY_KIND = {(r.group, r.kind): r for r in KNOWN}


def resource_path(
    api_version: str, plural: str, namespace: str | None, name: str | None = None, sub: str | None = None
) -> str:
    """`/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]`, or the same under `/apis/GROUP/VERSION`."""
    base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    if name:
        base += f"/{name}"
    if sub:
        base += f"/{sub}"
    return base


def of(obj: dict) -> Resource:
    """The resource of a manifest, at the manifest's own version; KeyError for a kind not listed."""
    api_version = obj["apiVersion"]
    group, _, version = api_version.rpartition("/")
    return _BY_KIND[(group, obj["kind"])].at(version)


def object_path(obj: dict, sub: str | None = None) -> str:
    meta = obj.get("metadata") or {}
    return of(obj).path(meta.get("namespace"), meta.get("name"), sub)
