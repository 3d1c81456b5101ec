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

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ladder_api import API_VERSION, KIND
from ladder_api import kubenames as kn
from ladder_api.base import Model
from ladder_api.ladder import PAPER_CONTEXT_DIM
from ladder_api.tpu import SLICES

DNS1123_LABEL = re.compile(f"^{kn.DNS1123_LABEL}$")
DNS1035_LABEL = re.compile(f"^{kn.DNS1035_LABEL}$")
MAX_NAME_LENGTH = 40
URI_SCHEMES = ("gs://", "file://", "builtin:", "/", "./", "../")

PositiveInt = Annotated[int, Field(gt=0)]
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
        description="Block widths as multiples of c, one per resolution level.",
    )
    num_res_blocks: PositiveInt = Field(2, description="Residual blocks per level.")
    attention_levels: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: [0, 1, 2],
        description="Levels (0 = highest resolution) with a transformer block after each res-block.",
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
        description="Base channel counts c of the U-Net, one run per width (the paper: 64 to 768). "
        "Each c x channelMult must be divisible by normGroups and numHeads.",
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
    weights_uri: str | None = Field(
        None, description="Where the autoencoder weights are baked in or stored (sd-vae only)."
    )
    scaling_factor: float = Field(0.18215, gt=0, description="Latent scaling factor.")


class ReferenceSetSpec(Model):
    name: str = Field("coco2014-val-30k", description="Name of the evaluation reference set.")
    uri: str = Field(
        "gs://ladder-data/coco2014-val/prompts.jsonl",
        description="Prompts (and text embeddings) used to generate evaluation samples.",
    )
    stats_uri: str | None = Field(
        None,
        description="FID reference statistics (mu, sigma) made with clean-fid's custom-stats path. "
        "Required for Inception FID; computed from the reference set when omitted offline.",
    )

    @field_validator("uri", "stats_uri")
    @classmethod
    def _uri(cls, v: str | None, info) -> str | None:
        return None if v is None else _check_uri(v, info.field_name)


class DataSpec(Model):
    train_uri: str = Field(
        "gs://ladder-data/webli-latents/",
        description="Training shards of precomputed latents and text embeddings (gs://, a local "
        "path, or builtin:digits for the bundled handwritten-digits set).",
    )
    autoencoder: AutoencoderSpec = Field(
        default_factory=AutoencoderSpec, description="How images map to the latents the U-Net sees."
    )
    text_encoder: str = Field(
        "clip-vit-h14",
        description="Frozen text encoder whose embeddings are in the shards (not counted in sizes).",
    )
    reference_set: ReferenceSetSpec = Field(
        default_factory=ReferenceSetSpec,
        description="Prompts and reference statistics for evaluation (the paper: COCO 2014 val, 30K).",
    )
    shuffle_buffer: PositiveInt = Field(10_000, description="Examples in the shuffle buffer.")

    @field_validator("train_uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        return _check_uri(v, "trainUri")


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
    decay: float = Field(0.9999, gt=0, lt=1, description="EMA decay per step.")
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
    checkpoint: CheckpointSpec = Field(
        default_factory=CheckpointSpec, description="Checkpoint cadence and retention."
    )
    sharding: ShardingSpec = Field(
        default_factory=ShardingSpec, description="Device mesh of the training slice(s)."
    )
    log_every_steps: PositiveInt = Field(100, description="Metrics cadence.")
    compilation_cache_uri: str | None = Field(
        None, description="JAX persistent compilation cache (local path or gs://)."
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
        description="Training slice per size: rules in order, first match wins.",
    )
    overrides: dict[str, SliceRequest] = Field(
        default_factory=dict,
        description="Per-width override keyed by the width as a string, e.g. {'768': {...}}.",
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


class EvaluationSpec(Model):
    samplers: list[SamplerName] = Field(
        default_factory=lambda: [SamplerName.ddim, SamplerName.dpmpp_2m, SamplerName.ddpm],
        min_length=1,
        description="Samplers to evaluate.",
    )
    steps: list[PositiveInt] = Field(
        default_factory=lambda: [4, 6, 8, 10, 20, 50],
        min_length=1,
        description="Sampling step counts.",
    )
    guidance_scales: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: [1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        min_length=1,
        description="Classifier-free guidance scales (1.0 = no guidance).",
    )
    ddim_eta: float = Field(0.0, ge=0, le=1, description="DDIM eta (0 = deterministic).")
    num_samples: PositiveInt = Field(30_000, description="Samples per measurement.")
    batch_size: PositiveInt = Field(64, description="Samples generated per forward batch.")
    metrics: list[MetricName] = Field(
        default_factory=lambda: [MetricName.fid, MetricName.clip],
        min_length=1,
        description="Metrics per measurement: fid, clip (CLIP score), adherence (prompt-class "
        "accuracy of a classifier; digits only).",
    )
    fid_features: FidFeatures = Field(
        FidFeatures.inception,
        description="Features FID uses; anything but inception is labelled as such in results.",
    )
    inception_weights_uri: str = Field(
        "/opt/ladder/weights/inception-2015-12-05.pt",
        description="clean-fid's Inception weights, baked into the evaluator image.",
    )
    clip_weights_uri: str | None = Field(
        "/opt/ladder/weights/open_clip_vit_b32.safetensors",
        description="open_clip weights for the CLIP score.",
    )
    checkpoints: Literal["final", "all"] | list[PositiveInt] = Field(
        "final", description="Which checkpoints to evaluate: final (the one of training.steps; "
        "evaluating before it exists is an error), all kept, or given steps."
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


# --- storage ------------------------------------------------------------------------------------


class StorageSpec(Model):
    output_uri: str = Field(
        "gs://ladder-experiments/",
        description="Where checkpoints, metrics and samples go (gs:// or a local path); each "
        "experiment writes under <outputUri>/<name>/.",
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
