"""Everything a valid experiment must satisfy beyond its schema, for where it will run.

`ladder validate` and the operator call the same function, so a spec the operator would set
Invalid is one `ladder validate --cluster` refuses, with the same words:

- for every target: the per-chip memory plan (ladder_api.memory): a size its TPU slice cannot
  hold is refused here rather than running out of memory after TPU admission, and so is an eval
  slice whose chips cannot decode a batch of evaluation.batchSize (ladder_api.eval_memory);
- on a cluster (Target.cluster) also what can only fail in a pod, after it waited for a slice:
  outputs anywhere but gs:// (a pod's filesystem is read-only but for a scratch /tmp that dies
  with it, and the results must outlive it), data anywhere but gs:// or a builtin: set (the
  images carry scikit-learn's digits; nothing else is mounted), weights neither on gs:// nor an
  absolute path baked into the image (the Inception and CLIP loaders read only local files), and
  a global batch the slice's chips do not divide (the trainer refuses it on start);
- on a cluster with a site Policy (ladder_api.policy): the chart's allowlists of image
  repositories, storage prefixes and Google service accounts.

Schema errors (pydantic, ladder_api.errors.describe) come before all of this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from ladder_api.eval_memory import decode_memory_problems
from ladder_api.memory import memory_problems
from ladder_api.policy import Policy, violations
from ladder_api.spec import ScalingExperiment, ScalingExperimentSpec
from ladder_api.tpu import SLICES


class Target(StrEnum):
    local = "local"  # `ladder run`: this machine's processes and files
    cluster = "cluster"  # the operator: pods on TPU slices, files on gs://


@dataclass(frozen=True)
class Problem:
    field: str  # the spec path as the user writes it: spec.storage.outputUri
    message: str
    cluster_only: bool = False  # `ladder run` could execute it; pods cannot

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def problems(
    exp: ScalingExperiment, target: Target = Target.cluster, policy: Policy | None = None
) -> list[Problem]:
    """Every problem of a schema-valid experiment for `target`, each naming its field."""
    spec = exp.spec
    found = [Problem(f"spec.{field}", message) for field, message in
             (p.split(": ", 1) for p in _memory_problems(spec))]
    found += [Problem(f, m) for f, m in evaluation_problems(spec)]
    found += [Problem(f, m) for f, m in decode_memory_problems(spec)]
    if target is Target.cluster:
        found += [Problem(f, m, cluster_only=True) for f, m in _cluster_problems(spec)]
        if policy is not None:
            found += [Problem(f, m, cluster_only=True) for f, m in violations(
                _images(spec), dict(_uris(spec)),
                ("spec.resources.gcpServiceAccount", spec.resources.gcp_service_account), policy)]
    return found


_MEMORY: dict[str, list[str]] = {}
_MEMORY_KEEP = 512


def _memory_problems(spec: ScalingExperimentSpec) -> list[str]:
    """memory_problems, remembered per (ladder, training, resources): the operator validates on
    every reconcile, and the plan of the paper's 11 sizes takes ~15 ms to compute."""
    key = json.dumps([spec.ladder.to_wire(), spec.training.to_wire(), spec.resources.to_wire()],
                     sort_keys=True)
    if key not in _MEMORY:
        if len(_MEMORY) >= _MEMORY_KEEP:
            _MEMORY.clear()
        _MEMORY[key] = memory_problems(spec)
    return list(_MEMORY[key])


def _images(spec: ScalingExperimentSpec) -> dict[str, str]:
    images = spec.resources.images
    return {"spec.resources.images.trainer": images.trainer,
            "spec.resources.images.evaluator": images.evaluator}


def _uris(spec: ScalingExperimentSpec) -> list[tuple[str, str]]:
    """Every storage location of the spec, (field, uri), the unset ones left out."""
    d, e = spec.data, spec.evaluation
    pairs = [
        ("spec.storage.outputUri", spec.storage.output_uri),
        ("spec.training.compilationCacheUri", spec.training.compilation_cache_uri),
        ("spec.data.trainUri", d.train_uri),
        ("spec.data.referenceSet.uri", d.reference_set.uri),
        ("spec.data.referenceSet.statsUri", d.reference_set.stats_uri),
        ("spec.data.autoencoder.weightsUri", d.autoencoder.weights_uri),
        ("spec.data.textEncoder.weightsUri", d.text_encoder.weights_uri),
        ("spec.evaluation.inceptionWeightsUri", e.inception_weights_uri),
        ("spec.evaluation.clipWeightsUri", e.clip_weights_uri),
    ]
    return [(f, u) for f, u in pairs if u]


WRITTEN = {"spec.storage.outputUri", "spec.training.compilationCacheUri"}
# data fields -> whether a builtin: set may stand there
DATA = {"spec.data.trainUri": True, "spec.data.referenceSet.uri": True,
        "spec.data.referenceSet.statsUri": False}
LOCAL_FILES_ONLY = {"spec.evaluation.inceptionWeightsUri", "spec.evaluation.clipWeightsUri"}


def _location_problem(field: str, uri: str) -> str | None:
    remote = uri.startswith("gs://")
    if field in WRITTEN and not remote:
        return (f"{uri} is on no storage a pod keeps: pods write only to gs:// (their filesystem is "
                "read-only but for a scratch /tmp that dies with them); use gs://BUCKET/PREFIX/, or "
                "`ladder run` to run on this machine")
    if field in DATA and not (remote or (DATA[field] and uri.startswith("builtin:"))):
        kinds = "gs:// or a builtin: set" if DATA[field] else "gs://"
        return (f"{uri} cannot be read in a pod: nothing but the image and the run config is mounted "
                f"there; use {kinds}, or `ladder run` to run on this machine")
    path = uri.removeprefix("file://")
    if field in LOCAL_FILES_ONLY and not path.startswith("/"):
        return (f"{uri}: these weights are read from a local file, so in a pod they must be an "
                "absolute path baked into the evaluator image (default /opt/ladder/weights/...)")
    if field not in WRITTEN and field not in DATA and not (remote or path.startswith("/")):
        return f"{uri}: a relative path means nothing in a pod; use gs:// or an absolute path in the image"
    return None


BUILTIN_REFERENCE_SETS = ("builtin:digits", "builtin:digits-test")


def evaluation_problems(spec: ScalingExperimentSpec) -> list[tuple[str, str]]:
    """What the evaluator would refuse only after training (each check mirrors a UserError of
    ladder_evaluator, named beside it): a reference set it cannot read (it reads the prompts .npz
    `ladder prepare reference` writes, or a builtin set), FID without reference statistics for a
    set that ships no images to compute them from, the CLIP score without CLIP weights, the sd-vae
    decoder without its weights. A prompts file's contents (its count, shapes, encoder and, for
    adherence, its digit labels) are checked where they can be read cheaply: by `ladder validate`
    and `ladder run` for a local file (ladder_cli.cmd_spec), by the evaluator always."""
    ref, ev = spec.data.reference_set, spec.evaluation
    metrics = [str(m) for m in ev.metrics]
    out = []
    builtin = ref.uri in BUILTIN_REFERENCE_SETS
    if "clip" in metrics and not ev.clip_weights_uri:  # ladder_evaluator.metrics.clip_score.load
        out.append(("spec.evaluation.clipWeightsUri",
                    "metrics include clip but no CLIP weights are set: point clipWeightsUri at the "
                    "open_clip weights baked into the evaluator image, or drop clip from evaluation.metrics"))
    ae = spec.data.autoencoder
    if ae.kind == "sd-vae" and not ae.weights_uri:  # ladder_trainer.models.sd_vae.load_checked
        out.append(("spec.data.autoencoder.weightsUri",
                    "the sd-vae autoencoder needs its weights (a diffusers AutoencoderKL folder) to decode "
                    "samples into images: set weightsUri, or use kind: identity for a pixel-space study"))

    if not builtin and not ref.uri.endswith(".npz"):
        out.append(("spec.data.referenceSet.uri",
                    f"{ref.uri}: the evaluator reads reference prompts from an .npz (captions, context, "
                    "uncond), as `ladder prepare reference` writes, or builtin:digits-test"))
    if "fid" in [str(m) for m in ev.metrics] and not builtin and not ref.stats_uri:
        out.append(("spec.data.referenceSet.statsUri",
                    f"FID needs reference statistics for {ref.uri} (it ships no images): set statsUri "
                    "to the statistics `ladder prepare reference` writes"))
    return out


def _cluster_problems(spec: ScalingExperimentSpec) -> list[tuple[str, str]]:
    out = [(f, p) for f, u in _uris(spec) if (p := _location_problem(f, u))]
    batch = spec.training.global_batch
    by_slice: dict[tuple[str, int], list[int]] = {}
    for width in spec.ladder.widths:
        req = spec.resources.slice_for(width)
        by_slice.setdefault((req.slice_type, req.num_slices), []).append(width)
    for (slice_type, count), widths in by_slice.items():
        chips = SLICES[slice_type].chips * count
        if batch % chips:
            on = slice_type if count == 1 else f"{count} x {slice_type}"
            out.append(("spec.training.globalBatch",
                        f"{batch} is not divisible by the {chips} chips of {on} (widths "
                        f"{', '.join(map(str, widths))}): every chip takes an equal share of the batch, "
                        "so the trainer would refuse it on the slice"))
    return out
