"""Read experiment files and run configs. Every failure becomes a SpecError or a UserError naming
the file, within a second whatever the file. (The run's other files are ladder_api.artifacts';
bytes move through ladder_api.storage.)

A spec file is capped as the API server caps the object it becomes: a real kube-apiserver
refuses request bodies over ~1.5 MiB (etcd's object limit) and annotations over 256 KiB in total,
so nothing larger can ever be applied. Checking the size before parsing, and the nesting depth
before validating, keeps a hostile or mistaken file (a 50 MB list, `[[[...]]]` 20,000 deep) from
running for minutes, exhausting memory or ending in a RecursionError traceback.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from ladder_api import artifacts, storage
from ladder_api.errors import SpecError, UserError, describe
from ladder_api.plan import RunConfig
from ladder_api.spec import ScalingExperiment


def parse_experiment(data, source: str = "<input>") -> ScalingExperiment:
    if not isinstance(data, dict):
        raise SpecError(source, ["the document must be a mapping with apiVersion, kind, metadata, spec"])
    check_object_limits(data, source)
    try:
        return ScalingExperiment.model_validate(data)
    except ValidationError as err:
        raise SpecError(source, describe(err)) from None


MAX_OBJECT_BYTES = 3 * 1024 * 1024 // 2  # kube-apiserver's request limit (etcd: 1.5 MiB objects)
MAX_ANNOTATION_BYTES = 256 * 1024  # total of metadata.annotations' keys and values
MAX_DEPTH = 64  # far deeper than any spec field; YAML and pydantic recurse per level
TOO_DEEP = f"the document nests deeper than {MAX_DEPTH} levels; no spec field does"


def _depth_ok(text: str) -> bool:
    """Flow-style nesting ([[[ or {{{) is what can recurse without a long file; block-style depth
    is bounded by the file size cap. Counts brackets outside quoted scalars well enough: a false
    alarm needs 64 unbalanced brackets inside strings."""
    depth = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in "]}":
            depth = max(0, depth - 1)
    return True


def _nested_deeper_than(value, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def check_object_limits(data, source: str) -> None:
    """The limits a real API server applies to the object this document would become."""
    if _nested_deeper_than(data, MAX_DEPTH):
        raise SpecError(source, [TOO_DEEP])
    annotations = ((data.get("metadata") or {}) if isinstance(data, dict) else {}).get("annotations")
    if isinstance(annotations, dict):
        size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
        if size > MAX_ANNOTATION_BYTES:
            raise SpecError(source, [
                f"metadata.annotations: {size} bytes in total; the API server allows at most "
                f"{MAX_ANNOTATION_BYTES} (256 KiB): keep large data out of annotations"
            ])


def load_documents(path: str | Path) -> list:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_OBJECT_BYTES:
            raise SpecError(str(p), [
                f"the file is {size / 2**20:.1f} MiB; a Kubernetes object is at most 1.5 MiB (the API "
                "server refuses larger requests), so no valid ScalingExperiment is this large"
            ])
        text = p.read_text()
    except FileNotFoundError:
        raise SpecError(str(p), ["file not found"]) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as err:
        raise SpecError(str(p), [f"cannot read the file ({err.__class__.__name__})"]) from None
    if not _depth_ok(text):
        raise SpecError(str(p), [TOO_DEEP])
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except RecursionError:
        raise SpecError(str(p), [TOO_DEEP]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError(str(p), [f"{where}invalid YAML ({getattr(err, 'problem', err)})"]) from None
    if not docs:
        raise SpecError(str(p), ["the file holds no YAML document"])
    return docs


def load_experiment(path: str | Path) -> ScalingExperiment:
    """Load the one ScalingExperiment in a file (a multi-document file must hold exactly one)."""
    docs = load_documents(path)
    if len(docs) == 1:  # let parse_experiment name what is wrong with it (kind, fields, ...)
        return parse_experiment(docs[0], str(path))
    exps = [
        d for d in docs if isinstance(d, dict) and d.get("kind", "ScalingExperiment") == "ScalingExperiment"
    ]
    if len(exps) != 1:
        raise SpecError(
            str(path), [f"expected exactly one ScalingExperiment document, found {len(exps)} of {len(docs)}"]
        )
    return parse_experiment(exps[0], str(path))


def load_run_config(path: str, what: str = "--config ") -> RunConfig:
    """Read the RunConfig JSON a pod gets (`--config`), the file `ladder plan -o` writes."""
    try:
        text = storage.read_text(path)
    except OSError as err:
        raise UserError(f"{what}{path}: cannot read ({err.strerror or err})") from None
    try:
        return RunConfig.model_validate_json(text)
    except ValidationError as err:
        raise SpecError(path, describe(err)) from None


def load_run_configs(state_dir: str | Path) -> list[RunConfig]:
    """The RunConfigs `ladder run` wrote into its directory (configs/), in start order."""
    folder = storage.join(str(state_dir), artifacts.CONFIG_DIR)
    paths = [p for p in storage.list_files(folder) if p.endswith(".json")]
    return sorted((load_run_config(p, what="") for p in paths), key=lambda r: r.index)
