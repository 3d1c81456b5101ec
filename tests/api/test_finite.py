"""No NaN or infinity anywhere in a spec: one rule (ladder_api.base.Model), checked on every float
field, found by walking the model rather than listed by hand, so a field added later is covered."""

from __future__ import annotations

import types
import typing

import pytest
from pydantic import BaseModel

from ladder_api.errors import SpecError
from ladder_api.loading import parse_experiment
from ladder_api.spec import ScalingExperimentSpec

NON_FINITE = [float("inf"), float("-inf"), float("nan"), "Infinity", "NaN"]


def _unwrap(t):
    """The types a field annotation can hold, with Annotated and Optional peeled off."""
    origin = typing.get_origin(t)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(t)[0])
    if origin in (typing.Union, types.UnionType):
        return [u for a in typing.get_args(t) for u in _unwrap(a)]
    return [t]


def float_paths(model: type[BaseModel], prefix: tuple = ()) -> list[tuple]:
    """Wire paths (aliases; 0 for a list element, "64" for a dict value) of every float."""
    out = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        for t in _unwrap(field.annotation):
            out += _paths_of(t, (*prefix, key))
    return out


def _paths_of(t, path: tuple) -> list[tuple]:
    origin = typing.get_origin(t)
    if t is float:
        return [path]
    if isinstance(t, type) and issubclass(t, BaseModel):
        return float_paths(t, path)
    if origin is list:
        return [p for a in _unwrap(typing.get_args(t)[0]) for p in _paths_of(a, (*path, 0))]
    if origin is dict:
        return [p for a in _unwrap(typing.get_args(t)[1]) for p in _paths_of(a, (*path, "64"))]
    return []


def _set(doc: dict, path: tuple, value) -> None:
    cur = doc
    for here, nxt in zip(path, path[1:], strict=False):
        if isinstance(cur, list):
            while len(cur) <= here:
                cur.append([] if isinstance(nxt, int) else {})
            cur = cur[here]
        else:
            if cur.get(here) is None:
                cur[here] = [] if isinstance(nxt, int) else {}
            cur = cur[here]
    if isinstance(cur, list):
        cur[:] = [value]
    else:
        cur[path[-1]] = value


SPEC_FLOATS = float_paths(ScalingExperimentSpec)


def test_the_walk_finds_the_floats_people_set():
    found = {".".join(map(str, p)) for p in SPEC_FLOATS}
    assert {"training.learningRate", "evaluation.guidanceScales.0", "evaluation.ddimEta",
            "training.noiseSchedule.betaStart", "data.autoencoder.scalingFactor"} <= found
    assert len(found) >= 12


@pytest.mark.parametrize("path", SPEC_FLOATS, ids=lambda p: ".".join(map(str, p)))
@pytest.mark.parametrize("value", NON_FINITE, ids=str)
def test_every_float_of_the_spec_refuses_non_finite_numbers(path, value):
    doc = {"metadata": {"name": "x"}, "spec": {}}
    if path[0] == "resources" and path[1] == "overrides":
        doc["spec"]["ladder"] = {"widths": [64]}
    _set(doc["spec"], path, value)
    with pytest.raises(SpecError) as info:
        parse_experiment(doc, "f.yaml")
    where = "spec." + ".".join(str(p) for p in path if not isinstance(p, int))
    assert any(p.startswith(where) and "finite" in p for p in info.value.problems), info.value.problems


@pytest.mark.parametrize("text", [".inf", "-.inf", ".nan", ".Inf", ".NaN"])
def test_yaml_infinity_is_refused_where_it_was_accepted(text):
    """`.inf` passed for learningRate and guidance, and `ladder plan` then printed `Infinity`."""
    import yaml

    doc = yaml.safe_load(
        f"metadata: {{name: x}}\nspec:\n  training: {{learningRate: {text}}}\n"
        f"  evaluation: {{guidanceScales: [2.0, {text}]}}\n"
    )
    with pytest.raises(SpecError) as info:
        parse_experiment(doc, "f.yaml")
    assert [p.split(":")[0] for p in info.value.problems] == [
        "spec.training.learningRate", "spec.evaluation.guidanceScales[1]"]
