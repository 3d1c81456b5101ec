"""The recipe: what fixes the model a size trains, and nothing else. One definition, used by the
recipe hash in every RunConfig, by the operator's refusal of edits to started sizes (with the
fields named), and by `ladder run`'s refusal to resume checkpoints under another recipe, so both
backends accept and refuse exactly the same edits.

In the recipe: the ladder's shared U-Net settings (the width is added by the hash), the training
data and its encoders, and every training setting that changes the math of a step or the data
order. Not in it: where and how the math runs (sharding, slices, how long hosts wait for each
other), when checkpoints are written and kept, logging, caches, and what is evaluated (the
reference set, whether EMA weights are scored). Those can change while sizes train.

Stable across Ladder versions: a field added to the recipe later is recorded in LEGACY with the
value that reproduces what Ladder did before the field existed. A recipe that holds a field at its
legacy value has the same identity (hash) as one recorded before the field existed, so upgrading
the operator never refuses experiments it started.

Defaults are versioned the same way: a field whose new default differs from the old behaviour
(the paper's initialisation and EMA warm-up) keeps, in an experiment started before the field
existed, the value it started with. `keep_started_defaults` gives such an experiment the legacy
value of every recipe field its recorded recipe lacks and its spec leaves unset, so an upgrade
continues old experiments with their original math while new experiments get the new defaults;
both backends apply it to the recipe they recorded when the first size started.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from pydantic import BaseModel, TypeAdapter

if TYPE_CHECKING:  # pragma: no cover
    from ladder_api.plan import ModelConfig
    from ladder_api.spec import DataSpec, ScalingExperiment, TrainingSpec

# Fields of each spec section that do not change the trained model (wire names, dotted).
NOT_RECIPE: dict[str, frozenset[str]] = {
    "ladder": frozenset({"baseChannels", "params", "gflopsPerForward", "normalizedCost", "widths"}),
    # Where `ladder prepare` loads the text encoder from does not change the data: its hash does.
    # How the data is prepared (source, workers, slice) neither: trainUri and the encoders' hashes
    # name the data, and a preparation refuses to add parts made with other settings to an output.
    "data": frozenset({"referenceSet", "shuffleBuffer", "textEncoder.weightsUri", "prepare"}),
    "training": frozenset(
        {"sharding", "checkpoint", "logEverySteps", "compilationCacheUri", "ema.evaluateEma",
         "distributedInitTimeoutSeconds"}
    ),
}

# Recipe fields added after the first release, with the value that reproduces the behaviour of
# the Ladder versions before them ("spec path" -> legacy value). Add one line per new field.
LEGACY: dict[str, object] = {
    "training.initialization": "lecun-normal",  # every kernel lecun-normal, no zero-init
    "training.ema.warmup": False,  # EMA decay from step 0
    "data.autoencoder.hash": None,
    "data.textEncoder.hash": None,
}

# Recipe paths whose field moved in the spec, recorded under the old path so the identity holds:
# data.textEncoder was the encoder's name before it became {name, weightsUri, hash}.
KEPT_PATHS: dict[str, str] = {"data.textEncoder.name": "data.textEncoder"}

_MISSING = object()


def _flatten(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict) and value:
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: value}


def recipe_section(section: str, wire: dict) -> dict[str, object]:
    """One spec section's (wire form) recipe fields, as `section.field` paths."""
    skip = NOT_RECIPE[section]
    flat = _flatten(wire)
    out = {
        f"{section}.{k}": v
        for k, v in flat.items()
        if k not in skip and not any(k.startswith(f"{s}.") for s in skip)
    }
    return {KEPT_PATHS.get(k, k): v for k, v in out.items()}


def recipe(model: ModelConfig, data: DataSpec, training: TrainingSpec) -> dict[str, object]:
    """The recipe as flat `section.field` paths (as the user writes them under spec.) -> values.
    Built from what a RunConfig carries, so a pod, the operator and `ladder run` derive it alike."""
    return recipe_from_config({
        "model": model.to_wire(exclude_none=False),
        "data": data.to_wire(exclude_none=False),
        "training": training.to_wire(exclude_none=False),
    })


def recipe_from_config(config: dict) -> dict[str, object]:
    """The recipe of a RunConfig in wire form as read from a file, whatever Ladder version wrote
    it: fields it lacks count as their legacy values (recipe_diff), and a field it has that this
    version dropped shows as a difference."""
    out: dict[str, object] = {}
    for section, key in (("ladder", "model"), ("data", "data"), ("training", "training")):
        wire = config.get(key)
        out.update(recipe_section(section, wire if isinstance(wire, dict) else {}))
    return dict(sorted(out.items()))


def identity(flat: dict[str, object]) -> dict[str, object]:
    """The recipe with every field at its legacy value left out: what the hash covers."""
    return {k: v for k, v in flat.items() if LEGACY.get(k, _MISSING) != v}


def recipe_hash(flat: dict[str, object], width: int) -> str:
    """The hash every RunConfig carries and the training JobSets are annotated with."""
    payload = json.dumps({"width": width, "recipe": identity(flat)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def recipe_diff(old: dict[str, object], new: dict[str, object]) -> list[str]:
    """`spec.<path>: old -> new` for every field whose value differs. A field missing on one side
    (recorded by an older version) counts as its legacy value, so it is no difference."""

    def value(side: dict, key: str):
        return side.get(key, LEGACY.get(key))

    out = []
    for key in sorted(set(old) | set(new)):
        a, b = value(old, key), value(new, key)
        if a != b:
            out.append(f"spec.{key}: {json.dumps(a)} -> {json.dumps(b)}")
    return out


def _field_name(model: BaseModel, wire: str) -> str | None:
    for name, info in type(model).model_fields.items():
        if wire in (name, info.alias):
            return name
    return None


def _user_set(model: BaseModel, path: list[str]) -> bool:
    """Whether the spec (as written, not defaulted) sets the field at `path` (wire names)."""
    name = _field_name(model, path[0])
    if name is None or name not in model.model_fields_set:
        return False
    return len(path) == 1 or _user_set(getattr(model, name), path[1:])


def _value(model: BaseModel, path: list[str]):
    value = getattr(model, _field_name(model, path[0]) or "", None)
    if len(path) == 1 or not isinstance(value, BaseModel):
        return getattr(value, "value", value)  # an enum as its wire value
    return _value(value, path[1:])


def _with_value(model: BaseModel, path: list[str], value) -> BaseModel:
    name = _field_name(model, path[0])
    if len(path) == 1:
        typed = TypeAdapter(type(model).model_fields[name].annotation).validate_python(value)
        return model.model_copy(update={name: typed})
    return model.model_copy(update={name: _with_value(getattr(model, name), path[1:], value)})


_SECTIONS = {"ladder": "ladder", "data": "data", "training": "training"}  # recipe section -> spec field


def started_defaults(exp: ScalingExperiment, recorded: dict[str, object] | None) -> dict[str, object]:
    """The recipe fields (path -> legacy value) the experiment keeps at their old defaults: those
    its recorded recipe (None: nothing started) lacks, because it was recorded before they
    existed, and its spec leaves unset. Empty for a new experiment."""
    if not recorded:
        return {}
    return {path: value for path, value in _unset_new_defaults(exp).items() if path not in recorded}


def _unset_new_defaults(exp: ScalingExperiment) -> dict[str, object]:
    """The LEGACY fields (path -> legacy value) `exp` leaves unset and whose default differs from
    the legacy value: what an experiment started before them would keep at the legacy value."""
    out = {}
    for path, value in LEGACY.items():
        section, *rest = path.split(".")
        if not rest:
            continue
        part = getattr(exp.spec, _SECTIONS[section])
        if not _user_set(part, rest) and _value(part, rest) != value:
            out[path] = value
    return out


def keep_started_defaults(exp: ScalingExperiment, recorded: dict[str, object] | None) -> ScalingExperiment:
    """`exp` with started_defaults applied: what both backends plan a started experiment with."""
    return _with_values(exp, started_defaults(exp, recorded))


def legacy_candidates(exp: ScalingExperiment) -> list[ScalingExperiment]:
    """`exp` as each Ladder version before its LEGACY fields would have planned it: with the legacy
    value of every subset of the LEGACY fields its spec leaves unset, fewest first (`exp` itself
    first). For an experiment whose recorded recipe is lost, the one whose recipe hashes match its
    started JobSets' is the one it started with."""
    from itertools import combinations

    legacy = _unset_new_defaults(exp)
    return [_with_values(exp, {p: legacy[p] for p in subset})
            for n in range(len(legacy) + 1) for subset in combinations(legacy, n)]


def _with_values(exp: ScalingExperiment, values: dict[str, object]) -> ScalingExperiment:
    spec = exp.spec
    for path, value in values.items():
        section, *rest = path.split(".")
        part = _SECTIONS[section]
        spec = spec.model_copy(update={part: _with_value(getattr(spec, part), rest, value)})
    return exp if spec is exp.spec else exp.model_copy(update={"spec": spec})
