"""Read experiment files and run configs; every failure becomes a SpecError or a UserError naming
the file. (The run's other files are ladder_api.artifacts'; bytes move through ladder_api.storage.)"""

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
    try:
        return ScalingExperiment.model_validate(data)
    except ValidationError as err:
        raise SpecError(source, describe(err)) from None


def load_documents(path: str | Path) -> list:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise SpecError(str(p), ["file not found"]) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as err:
        raise SpecError(str(p), [f"cannot read the file ({err.__class__.__name__})"]) from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
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
