"""diffusers state dicts <-> the ladder's Flax parameter trees (pure: numpy in, numpy out).

torch stores a conv kernel as [out, in, kh, kw] and a linear weight as [out, in]; Flax as
[kh, kw, in, out] and [in, out]. Biases and norm scales are the same vectors. A 1x1 conv and a
linear layer are the same map, so either layout is accepted where the other is expected (SD 1.x
files hold the transformers' proj_in/proj_out as 1x1 convs, SD 2.x as linears).

The Flax tree is the ground truth of what must be there: every leaf gets exactly one diffusers key
(``names.diffusers_key``), and a file is checked against that list before any tensor is converted,
so a wrong file is reported whole (every missing, unexpected and mis-shaped tensor by name).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
from flax import traverse_util

from ladder_trainer.weights.names import diffusers_key

MAX_LINES_PER_KIND = 12


@dataclasses.dataclass(frozen=True)
class Slot:
    """One Flax leaf and the diffusers tensor that fills it."""

    path: tuple[str, ...]
    shape: tuple[int, ...]  # Flax layout

    @property
    def torch_shape(self) -> tuple[int, ...]:
        s = self.shape
        if len(s) == 4:
            return (s[3], s[2], s[0], s[1])
        return (s[1], s[0]) if len(s) == 2 else s

    def accepts(self, shape: tuple[int, ...]) -> bool:
        shape = tuple(shape)
        return shape == self.torch_shape or _squeeze_1x1(shape) == _squeeze_1x1(self.torch_shape)


def _squeeze_1x1(torch_shape: tuple[int, ...]) -> tuple[int, ...]:
    return torch_shape[:2] if len(torch_shape) == 4 and torch_shape[2:] == (1, 1) else torch_shape


def to_torch(x: np.ndarray) -> np.ndarray:
    if x.ndim == 4:
        return x.transpose(3, 2, 0, 1)
    return x.T if x.ndim == 2 else x


def from_torch(t: np.ndarray, slot: Slot) -> np.ndarray:
    if len(slot.shape) == 4:
        return t.reshape(slot.torch_shape).transpose(2, 3, 1, 0)  # a linear [O, I] fills a 1x1 conv
    if len(slot.shape) == 2:
        return t.reshape(t.shape[:2]).T
    return t


def slots(abstract_params, levels: int) -> dict[str, Slot]:
    """diffusers key -> Slot for every leaf of an (abstract) Flax parameter tree."""
    out: dict[str, Slot] = {}
    for path, leaf in traverse_util.flatten_dict(abstract_params).items():
        key = diffusers_key(path, levels)
        if key in out:
            raise AssertionError(f"{'/'.join(path)} and {'/'.join(out[key].path)} both map to {key}")
        out[key] = Slot(tuple(path), tuple(leaf.shape))
    return out


def problems(found: Mapping[str, tuple[int, ...]], expected: Mapping[str, Slot]) -> list[str]:
    """One line per missing, mis-shaped or unexpected tensor (at most MAX_LINES_PER_KIND of each,
    then a count), empty when the file fits."""
    missing = [
        f"missing tensor {k} (expected shape {s.torch_shape})" for k, s in expected.items() if k not in found
    ]
    wrong = [
        f"tensor {k} has shape {tuple(found[k])}, expected {s.torch_shape}"
        for k, s in expected.items() if k in found and not s.accepts(found[k])
    ]
    unexpected = [f"unexpected tensor {k} (shape {tuple(v)})" for k, v in found.items() if k not in expected]
    if not (missing or wrong or unexpected):
        return []
    lines = [f"{len(missing)} of the {len(expected)} expected tensors missing, {len(wrong)} with another "
             f"shape, {len(unexpected)} unexpected:"]
    for kind in (missing, wrong, unexpected):
        lines += kind[:MAX_LINES_PER_KIND]
        if len(kind) > MAX_LINES_PER_KIND:
            lines.append(f"... and {len(kind) - MAX_LINES_PER_KIND} more like that")
    return lines


def to_params(get: Callable[[str], np.ndarray], expected: Mapping[str, Slot], dtype=np.float32) -> dict:
    """The nested Flax parameter dict from tensors fetched by name (already checked by ``problems``)."""
    flat = {s.path: from_torch(np.asarray(get(k)), s).astype(dtype) for k, s in expected.items()}
    return traverse_util.unflatten_dict(flat)


def to_state_dict(params, levels: int) -> dict[str, np.ndarray]:
    """diffusers key -> float32 torch-layout array, for every leaf of a Flax parameter tree."""
    flat = traverse_util.flatten_dict(params)
    out = {}
    for path, leaf in flat.items():
        out[diffusers_key(path, levels)] = np.ascontiguousarray(to_torch(np.asarray(leaf, np.float32)))
    return out
