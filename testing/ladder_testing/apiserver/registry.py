"""Which resources the server serves: core/RBAC built-ins, plus every CustomResourceDefinition.

CRDs are objects in the store like any other, so a test (or kopf's CRD observer) sees them, and
creating one at run time serves it at once. At start the server registers the real upstream CRDs
for JobSet and Kueue Workloads (../shared/schemas, when present) and Ladder's own CRD from
charts/ladder/crds/; when a file is missing it falls back to a small CRD with the same names and
the list-map keys that server-side apply relies on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
SCHEMA_DIRS = [
    Path(os.environ["LADDER_SHARED_SCHEMAS"]) if os.environ.get("LADDER_SHARED_SCHEMAS") else None,
    REPO.parent / "shared" / "schemas",
    REPO / "shared" / "schemas",
]
LADDER_CRD_DIR = REPO / "charts" / "ladder" / "crds"


@dataclass
class ResourceDef:
    group: str
    versions: list[str]
    kind: str
    plural: str
    singular: str
    namespaced: bool = True
    status: bool = False
    schema: dict = field(default_factory=dict)
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def storage_version(self) -> str:
        return self.versions[-1]

    def api_version(self, version: str | None = None) -> str:
        v = version or self.storage_version
        return f"{self.group}/{v}" if self.group else v

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


def builtin_resources() -> list[ResourceDef]:
    core = [
        ResourceDef(
            "",
            ["v1"],
            "Namespace",
            "namespaces",
            "namespace",
            namespaced=False,
            status=True,
            short_names=["ns"],
        ),
        ResourceDef("", ["v1"], "ConfigMap", "configmaps", "configmap", short_names=["cm"]),
        ResourceDef("", ["v1"], "Secret", "secrets", "secret"),
        ResourceDef("", ["v1"], "ServiceAccount", "serviceaccounts", "serviceaccount", short_names=["sa"]),
        ResourceDef("", ["v1"], "Event", "events", "event", short_names=["ev"]),
        ResourceDef("", ["v1"], "Pod", "pods", "pod", status=True, short_names=["po"]),
        ResourceDef("", ["v1"], "Service", "services", "service", status=True, short_names=["svc"]),
        ResourceDef("events.k8s.io", ["v1"], "Event", "events", "event", short_names=["ev"]),
        ResourceDef("rbac.authorization.k8s.io", ["v1"], "Role", "roles", "role"),
        ResourceDef("rbac.authorization.k8s.io", ["v1"], "RoleBinding", "rolebindings", "rolebinding"),
        ResourceDef(
            "rbac.authorization.k8s.io",
            ["v1"],
            "ClusterRole",
            "clusterroles",
            "clusterrole",
            namespaced=False,
        ),
        ResourceDef(
            "rbac.authorization.k8s.io",
            ["v1"],
            "ClusterRoleBinding",
            "clusterrolebindings",
            "clusterrolebinding",
            namespaced=False,
        ),
        ResourceDef("coordination.k8s.io", ["v1"], "Lease", "leases", "lease"),
        ResourceDef(
            "apiextensions.k8s.io",
            ["v1"],
            "CustomResourceDefinition",
            "customresourcedefinitions",
            "customresourcedefinition",
            namespaced=False,
            status=True,
            short_names=["crd", "crds"],
        ),
    ]
    return core


def resource_from_crd(crd: dict) -> ResourceDef:
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec["versions"] if v.get("served", True)]
    storage = next((v for v in served if v.get("storage")), served[-1])
    # Storage version last: objects are kept (and returned) in that version.
    versions = [v["name"] for v in served if v is not storage] + [storage["name"]]
    return ResourceDef(
        group=spec["group"],
        versions=versions,
        kind=names["kind"],
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        status="status" in (storage.get("subresources") or {}),
        schema=(storage.get("schema") or {}).get("openAPIV3Schema") or {},
        short_names=list(names.get("shortNames") or []),
        categories=list(names.get("categories") or []),
    )


def minimal_crd(
    group: str,
    versions: list[str],
    kind: str,
    plural: str,
    *,
    short_names=(),
    status_schema: dict | None = None,
) -> dict:
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "status": status_schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": kind + "List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": list(short_names),
            },
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": i == len(versions) - 1,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema},
                }
                for i, v in enumerate(versions)
            ],
        },
    }


def _keyed(key: str) -> dict:
    return {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": [key],
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }


LADDER_STATUS_FALLBACK = {
    "type": "object",
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {"results": _keyed("id"), "sizes": _keyed("width"), "conditions": _keyed("type")},
}


def _load_yaml(path: Path) -> list[dict]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path) as fh:
        return [
            d for d in yaml.load_all(fh, Loader=loader) if d and d.get("kind") == "CustomResourceDefinition"
        ]


def _find_schema(filename: str) -> Path | None:
    for d in SCHEMA_DIRS:
        if d is not None and (d / filename).is_file():
            return d / filename
    return None


def default_crds() -> list[dict]:
    """The CRDs a fresh server starts with: JobSet, Kueue Workload, ScalingExperiment."""
    crds = []
    path = _find_schema("jobset.x-k8s.io_jobsets.yaml")
    crds += _load_yaml(path) if path else [minimal_crd("jobset.x-k8s.io", ["v1alpha2"], "JobSet", "jobsets")]
    path = _find_schema("kueue.x-k8s.io_workloads.yaml")
    crds += (
        _load_yaml(path)
        if path
        else [minimal_crd("kueue.x-k8s.io", ["v1beta1", "v1beta2"], "Workload", "workloads")]
    )
    ladder = []
    if LADDER_CRD_DIR.is_dir():
        for f in sorted(LADDER_CRD_DIR.glob("*.yaml")):
            ladder += _load_yaml(f)
    if not any(c["spec"]["group"] == "ladder.dev" for c in ladder):
        ladder.append(
            minimal_crd(
                "ladder.dev",
                ["v1alpha1"],
                "ScalingExperiment",
                "scalingexperiments",
                short_names=["sx"],
                status_schema=LADDER_STATUS_FALLBACK,
            )
        )
    return crds + ladder
