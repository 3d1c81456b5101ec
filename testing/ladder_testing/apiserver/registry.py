"""Which resources the server serves: core/RBAC built-ins, plus every CustomResourceDefinition.

CRDs are objects in the store like any other, so a test (or kopf's CRD observer) sees them, and
creating one at run time serves it at once. At start the server registers the real upstream CRDs
for JobSet and Kueue Workloads (shared/schemas: `$LADDER_SHARED_DIR/schemas`, or `../shared/schemas`
beside the repository) and Ladder's own CRD from charts/ladder/crds/. A missing file stops the
server with a message naming where it looked: a stand-in CRD would be more lenient than the real
one and hide the defects these tests are for.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
LADDER_CRD_DIR = REPO / "charts" / "ladder" / "crds"
UPSTREAM_CRDS = ("jobset.x-k8s.io_jobsets.yaml", "kueue.x-k8s.io_workloads.yaml")
AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def schema_dirs() -> list[Path]:
    """Where the upstream CRDs may be: $LADDER_SHARED_DIR/schemas, then ../shared/schemas."""
    dirs = []
    if os.environ.get("LADDER_SHARED_DIR"):
        dirs.append(Path(os.environ["LADDER_SHARED_DIR"]) / "schemas")
    dirs.append(REPO.parent / "shared" / "schemas")
    return dirs


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
    name_rule: str = "subdomain"  # how metadata.name is validated (naming.NAME_RULES)
    crd: bool = False  # a custom resource: structural schema, no strategic merge patch
    schemas: dict[str, dict] = field(default_factory=dict)  # version -> openAPIV3Schema (CRDs)
    columns: dict[str, list[dict]] = field(default_factory=dict)  # version -> additionalPrinterColumns
    selectable_fields: list[str] = field(default_factory=list)  # CRD selectableFields (jsonPaths)

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

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def builtin_resources() -> list[ResourceDef]:
    rbac = "rbac.authorization.k8s.io"
    return [
        ResourceDef(
            "",
            ["v1"],
            "Namespace",
            "namespaces",
            "namespace",
            namespaced=False,
            status=True,
            short_names=["ns"],
            name_rule="label",
        ),
        ResourceDef("", ["v1"], "ConfigMap", "configmaps", "configmap", short_names=["cm"]),
        ResourceDef("", ["v1"], "Secret", "secrets", "secret"),
        ResourceDef("", ["v1"], "ServiceAccount", "serviceaccounts", "serviceaccount", short_names=["sa"]),
        ResourceDef("", ["v1"], "Event", "events", "event", short_names=["ev"]),
        ResourceDef("", ["v1"], "Pod", "pods", "pod", status=True, short_names=["po"], categories=["all"]),
        ResourceDef(
            "",
            ["v1"],
            "Service",
            "services",
            "service",
            status=True,
            short_names=["svc"],
            categories=["all"],
            name_rule="dns1035",
        ),
        ResourceDef("events.k8s.io", ["v1"], "Event", "events", "event", short_names=["ev"]),
        ResourceDef(rbac, ["v1"], "Role", "roles", "role", name_rule="path"),
        ResourceDef(rbac, ["v1"], "RoleBinding", "rolebindings", "rolebinding", name_rule="path"),
        ResourceDef(
            rbac, ["v1"], "ClusterRole", "clusterroles", "clusterrole", namespaced=False, name_rule="path"
        ),
        ResourceDef(
            rbac,
            ["v1"],
            "ClusterRoleBinding",
            "clusterrolebindings",
            "clusterrolebinding",
            namespaced=False,
            name_rule="path",
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
        crd=True,
        schemas={v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") or {} for v in served},
        columns={v["name"]: list(v.get("additionalPrinterColumns") or [AGE_COLUMN]) for v in served},
        selectable_fields=[f["jsonPath"] for f in storage.get("selectableFields") or []],
    )


@functools.cache
def _load_crds(path: Path) -> tuple[dict, ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path) as fh:
        docs = [d for d in yaml.load_all(fh, Loader=loader) if d]
    return tuple(d for d in docs if d.get("kind") == "CustomResourceDefinition")


def _upstream(filename: str) -> Path:
    for d in schema_dirs():
        if (d / filename).is_file():
            return d / filename
    raise FileNotFoundError(
        f"the local API server needs the upstream CRD {filename}: looked in "
        + ", ".join(str(d) for d in schema_dirs())
        + "; put shared/ beside the repository or set LADDER_SHARED_DIR to a shared/ directory"
    )


def default_crds() -> list[dict]:
    """The CRDs a fresh server starts with: JobSet, Kueue Workload, ScalingExperiment (parsed once
    per process and shared: the store copies what it is given)."""
    crds: list[dict] = []
    for filename in UPSTREAM_CRDS:
        crds += _load_crds(_upstream(filename))
    ladder = [c for f in sorted(LADDER_CRD_DIR.glob("*.yaml")) for c in _load_crds(f)]
    if not any(c["spec"]["group"] == "ladder.dev" for c in ladder):
        raise FileNotFoundError(f"no ladder.dev CustomResourceDefinition under {LADDER_CRD_DIR}")
    return crds + ladder
