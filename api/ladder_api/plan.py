"""expand(experiment) -> Plan: one Run per model size, each with its fully resolved config.

Pure and deterministic: the same experiment always gives byte-identical run configs, which is what
makes rendered manifests reproducible and lets pods (and `ladder run`) read back exactly what the
operator meant. A RunConfig is the whole input of the trainer and evaluator entry points.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import Field

from ladder_api.artifacts import RunPaths, size_paths
from ladder_api.base import Model
from ladder_api.ladder import UNetShape, forward_flops, normalized_cost, param_count
from ladder_api.recipe import recipe, recipe_hash
from ladder_api.spec import (
    DataSpec,
    EvaluationSpec,
    LadderSpec,
    ResourcesSpec,
    ScalingExperiment,
    SchedulingSpec,
    SliceRequest,
    TrainingSpec,
)
from ladder_api.storage import join

CODE_VERSION = "0.1.0"


def canonical_json(data) -> str:
    """Stable JSON: sorted keys, no whitespace variance. Hashes and ConfigMaps use it."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def short_hash(data, length: int = 10) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:length]


class ModelConfig(Model):
    """The U-Net of one run: the ladder's shared settings with the width filled in."""

    base_channels: int
    context_dim: int
    context_tokens: int
    channel_mult: list[int]
    num_res_blocks: int
    attention_levels: list[int]
    num_heads: int
    transformer_depth: int
    norm_groups: int
    latent_channels: int
    latent_size: int
    params: int = Field(..., description="Analytic parameter count.")
    gflops_per_forward: float = Field(..., description="Analytic GFLOPs of one forward pass.")
    normalized_cost: float = Field(..., description="Forward cost relative to c = 320.")

    def shape(self) -> UNetShape:
        """The shape the analytic counters (parameters, FLOPs, memory) and the trainer's U-Net
        are built from: the one mapping from a model config to a U-Net."""
        return unet_shape(self.base_channels, self)


class ExperimentRef(Model):
    name: str
    namespace: str
    uid: str | None = None


class RunConfig(Model):
    """Everything a trainer or evaluator pod needs, and nothing it has to look up elsewhere."""

    experiment: ExperimentRef
    name: str = Field(..., description="<experiment>-c<width>")
    width: int
    index: int = Field(..., description="Position in the experiment's start order.")
    spec_hash: str
    recipe_hash: str = Field(
        ..., description="Hash of the recipe (ladder_api.recipe: what fixes the trained model): a "
        "spec edit that changes it would change what a started size means."
    )
    code_version: str = CODE_VERSION
    model: ModelConfig
    data: DataSpec
    training: TrainingSpec
    evaluation: EvaluationSpec
    slice: SliceRequest
    eval_slice: SliceRequest
    paths: RunPaths

    def recipe(self) -> dict[str, object]:
        """What fixes this run's trained model (ladder_api.recipe), as `section.field` -> value."""
        return recipe(self.model, self.data, self.training)

    def config_json(self) -> str:
        """The exact bytes pods read (ConfigMap key <name>.json, `ladder plan -o`): canonical JSON
        by alias, nulls kept so a reader sees every setting."""
        return canonical_json(self.model_dump(mode="json", by_alias=True))


class Plan(Model):
    """The experiment resolved into runs, plus what the cluster backend needs to place them."""

    experiment: ExperimentRef
    spec_hash: str
    runs: list[RunConfig]
    root: str = Field("", description="The experiment's storage root: every run's files are below it.")
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="Images, service account and slices (render uses them)."
    )
    scheduling: SchedulingSpec = Field(
        default_factory=SchedulingSpec, description="Queue, priority and restart policy of the JobSets."
    )
    suspend: bool = Field(False, description="The experiment's spec.suspend.")

    def run(self, width: int) -> RunConfig:
        for r in self.runs:
            if r.width == width:
                return r
        raise KeyError(f"no run for width {width}; widths: {[r.width for r in self.runs]}")


def spec_hash(exp: ScalingExperiment) -> str:
    return short_hash(exp.spec.to_wire(exclude_none=False), 16)


def unet_shape(width: int, ladder) -> UNetShape:
    """A LadderSpec's or ModelConfig's shared settings at one width (both hold the same fields)."""
    return UNetShape(
        base_channels=width,
        context_dim=ladder.context_dim,
        channel_mult=tuple(ladder.channel_mult),
        num_res_blocks=ladder.num_res_blocks,
        attention_levels=tuple(ladder.attention_levels),
        num_heads=ladder.num_heads,
        in_channels=ladder.latent_channels,
        out_channels=ladder.latent_channels,
        norm_groups=ladder.norm_groups,
        transformer_depth=ladder.transformer_depth,
    )


def model_config(ladder: LadderSpec, width: int) -> ModelConfig:
    shape = unet_shape(width, ladder)
    return ModelConfig(
        base_channels=width,
        context_dim=ladder.context_dim,
        context_tokens=ladder.context_tokens,
        channel_mult=list(ladder.channel_mult),
        num_res_blocks=ladder.num_res_blocks,
        attention_levels=list(ladder.attention_levels),
        num_heads=ladder.num_heads,
        transformer_depth=ladder.transformer_depth,
        norm_groups=ladder.norm_groups,
        latent_channels=ladder.latent_channels,
        latent_size=ladder.latent_size,
        params=param_count(shape),
        gflops_per_forward=forward_flops(shape, ladder.latent_size, ladder.context_tokens) / 1e9,
        normalized_cost=normalized_cost(shape, ladder.latent_size, ladder.context_tokens),
    )


def expand(exp: ScalingExperiment, output_uri: str | None = None, *, root: str | None = None) -> Plan:
    """One run per width, in the spec's start order, its files under the experiment's root:
    `root` itself when given (`ladder run` chose the directory), else
    <output_uri or storage.outputUri>/<name>. The only place a run's paths are decided."""
    spec = exp.spec
    ref = ExperimentRef(name=exp.metadata.name, namespace=exp.metadata.namespace, uid=exp.metadata.uid)
    s_hash = spec_hash(exp)
    base = root if root is not None else join(output_uri or spec.storage.output_uri, exp.metadata.name)
    runs = []
    for index, width in enumerate(spec.ordered_widths()):
        model = model_config(spec.ladder, width)
        training = spec.training_for(width)
        runs.append(
            RunConfig(
                experiment=ref,
                name=f"{exp.metadata.name}-c{width}",
                width=width,
                index=index,
                spec_hash=s_hash,
                recipe_hash=recipe_hash(recipe(model, spec.data, training), width),
                model=model,
                data=spec.data,
                training=training,
                evaluation=spec.evaluation,
                slice=spec.resources.slice_for(width),
                eval_slice=spec.resources.eval_slice,
                paths=size_paths(base, width),
            )
        )
    return Plan(
        experiment=ref,
        spec_hash=s_hash,
        runs=runs,
        root=base,
        resources=spec.resources,
        scheduling=spec.scheduling,
        suspend=spec.suspend,
    )
