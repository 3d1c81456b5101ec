"""The schemas of the built-in kinds, Kubernetes v1.32's own (as kubernetes-validate ships them:
JSON Schema converted from the API server's OpenAPI, strict variant).

One source serves three purposes: decoding and pruning of built-in objects (what a real server's Go
types would keep), strategic-merge-patch keys, and the `/openapi/v2` and `/openapi/v3` documents
kubectl reads. A missing package is an error, not a silent fallback: the server would otherwise be
more lenient than a real one without saying so.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

K8S_VERSION = "1.32.0"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


@functools.cache
def definitions() -> dict[str, dict]:
    """name -> definition, `$ref`s spelled `#/$defs/NAME`."""
    spec = importlib.util.find_spec("kubernetes_validate")  # its data only: importing it costs 0.5 s
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the local API server needs the kubernetes-validate package (the schemas of the built-in "
            "kinds); install the dev extra: pip install -c constraints.txt -e '.[dev]'"
        )
    folder = (
        Path(spec.submodule_search_locations[0]) / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
    )
    return json.loads((folder / "_definitions.json").read_text())["$defs"]


@functools.cache
def _by_gvk() -> dict[tuple[str, str, str], str]:
    out = {}
    for name, d in definitions().items():
        for gvk in d.get("x-kubernetes-group-version-kind") or []:
            out[(gvk.get("group", ""), gvk["version"], gvk["kind"])] = name
    return out


def definition_name(group: str, version: str, kind: str) -> str | None:
    return _by_gvk().get((group, version, kind))


def definition(group: str, version: str, kind: str) -> dict | None:
    name = definition_name(group, version, kind)
    return definitions()[name] if name else None


def object_meta() -> dict:
    return definitions()[OBJECT_META]
