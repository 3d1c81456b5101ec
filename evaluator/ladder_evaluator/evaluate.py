"""Score a run's checkpoints over its evaluation grid and hand each measurement to a store.

Grid: checkpoints x samplers x steps x guidance scales; at each point `numSamples` images are
generated once and every metric of `evaluation.metrics` is computed on them. Everything that can
fail on user input (checkpoint, weights, reference statistics, prompts, autoencoder) is checked before the
first image is sampled. Results are stored after every grid point, so an interrupted evaluation
resumes where it stopped (ids already stored are skipped unless force).

Noise is common across grid points: sample i always starts from the same x_T (seeded by
evaluation.seed and i's batch) and the same prompt, so differences between settings are not
sampling noise.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from ladder_api import storage
from ladder_api.errors import UserError
from ladder_api.frontier import sampling_cost
from ladder_api.grid import (
    ADHERENCE,
    CLIP_SCORE,
    GridPoint,
    fid_features_of,
    fid_metric,
    metric_name,
    metric_names,
    run_grid_points,
    worker_share,
)
from ladder_api.plan import RunConfig
from ladder_api.spec import MetricName
from ladder_api.status import Result
from ladder_evaluator import model, provenance
from ladder_evaluator import prompts as prompts_mod
from ladder_evaluator.decode import Decoder, decoder
from ladder_evaluator.results import ResultStore
from ladder_evaluator.sampling import sample
from ladder_trainer import diffusion
from ladder_trainer.data_mesh import data_mesh, replicated, rows

log = logging.getLogger(__name__)
SAMPLES_KEPT = 64  # images per grid point saved for the report's sample grids


def cache_dir(run: RunConfig) -> Path:
    """Where the digits classifier is cached: beside the experiment's size directories when local
    (one training serves every size's evaluation: the classifier depends on the data only), else
    the user cache."""
    root = run.paths.root
    if not storage.is_remote(root):
        return storage.local_path(root).parent / "eval-cache"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "ladder" / run.experiment.namespace / run.experiment.name


@dataclass
class Scorers:
    """Feature extractors, reference statistics and judges, built once per evaluation; `backends`
    says which implementation (metrics.backends: jax or torch) computes each metric, recorded in
    every result's settings as metricsBackend."""

    run: RunConfig
    prompts: prompts_mod.Prompts
    fid_extractor: object | None = None
    fid_ref: tuple[np.ndarray, np.ndarray] | None = None
    fid_ref_feats: np.ndarray | None = None  # when the reference is computed from images
    fid_root: object | None = None  # bootstrap.Reference: the reference with its square root
    clip: object | None = None
    judge: object | None = None
    recorded: dict[str, str] | None = None  # provenance.settings, shared by every result
    backends: dict[str, str] = field(default_factory=dict)  # metric -> jax or torch

    @classmethod
    def build(cls, run: RunConfig, prompts: prompts_mod.Prompts,
              autoencoder_sha256: str | None = None) -> Scorers:
        """autoencoder_sha256: the decoder's weights hash (decode.Decoder.weights_hash), recorded."""
        from ladder_evaluator.metrics import backends, bootstrap, digits_classifier

        self = cls(run, prompts)
        ev = run.evaluation
        cache, stats = cache_dir(run), None
        if MetricName.fid in ev.metrics:
            self.fid_extractor = backends.fid_extractor(ev.fid_features, weights_uri=ev.inception_weights_uri,
                                                        cache_dir=cache, batch_size=ev.batch_size)
            stats = self._fid_reference()
            self.backends[fid_metric(ev.fid_features)] = self.fid_extractor.backend
            self.fid_root = bootstrap.Reference(*self.fid_ref)
        if MetricName.clip in ev.metrics:
            self.clip = backends.clip_scorer(ev.clip_weights_uri, batch_size=ev.batch_size,
                                             model_name=ev.clip_model)
            self.backends[CLIP_SCORE] = self.clip.backend
        if MetricName.adherence in ev.metrics:
            if prompts.labels is None:
                raise UserError(
                    "evaluation.metrics has adherence, which needs prompts with known digits: use "
                    "data.referenceSet.uri builtin:digits-test, or drop adherence"
                )
            self.judge = digits_classifier.extractor(cache)
            self.backends[ADHERENCE] = self.judge.backend
        self.recorded = provenance.settings(
            run, sampling_dtype=model.sampling_dtype(run), prompts=prompts,
            autoencoder_sha256=autoencoder_sha256, clip_model=self.clip_model,
            stats=stats if self.fid_extractor is not None else None,
        )
        return self

    def _fid_reference(self) -> str:
        """Load or compute the reference statistics; returns how, as recorded with results."""
        from ladder_evaluator.metrics import fid

        run, ev = self.run, self.run.evaluation
        stats_uri = run.data.reference_set.stats_uri
        if stats_uri:
            self.fid_ref = fid.load_stats(stats_uri, self.fid_extractor.dim)
            return provenance.file_digest(stats_uri) or f"read from {stats_uri}"
        if self.prompts.images is not None:
            images = np.asarray(self.prompts.images)
            self.fid_ref_feats = fid.features(images, self.fid_extractor, ev.batch_size)  # resampled too
            self.fid_ref = fid.statistics(self.fid_ref_feats)
            return "computed from the reference set's images"
        raise UserError(
            f"FID needs reference statistics: set data.referenceSet.statsUri (clean-fid "
            f"custom stats, {self.fid_extractor.dim}-dimensional for fidFeatures "
            f"{ev.fid_features.value}); the reference set {run.data.reference_set.uri} "
            "ships no images"
        )

    @property
    def clip_model(self) -> str | None:
        return getattr(self.clip, "model_name", None)

    def accumulator(self) -> Accumulator:
        return Accumulator(self)


class Accumulator:
    """Metric state over one grid point's batches: FID features, CLIP similarities and adherence
    hits are kept per sample (the bootstrap resamples them), images are not, so memory does not
    grow with numSamples x pixels."""

    def __init__(self, scorers: Scorers):
        self.s = scorers
        self.feats: list[np.ndarray] = []
        self.sims: list[np.ndarray] = []
        self.hits: list[np.ndarray] = []
        self.n = 0

    def add(self, images: np.ndarray, captions, labels) -> None:
        from ladder_evaluator.metrics import digits_classifier, fid

        ev = self.s.run.evaluation
        if self.s.fid_extractor is not None:
            self.feats.append(fid.features(images, self.s.fid_extractor, ev.batch_size))
        if self.s.clip is not None:
            self.sims.append(self.s.clip.similarities(images, list(captions), ev.batch_size))
        if self.s.judge is not None:
            self.hits.append(digits_classifier.predict(images, self.s.judge) == np.asarray(labels))
        self.n += len(images)

    def values(self) -> dict[str, dict]:
        """Per metric name, the Result fields of its measurement: value, interval, replicates."""
        from ladder_evaluator.metrics import bootstrap

        ev, out = self.s.run.evaluation, {}
        bs = dict(seed=ev.seed, resamples=ev.bootstrap.resamples, confidence=ev.bootstrap.confidence)
        for m in ev.metrics:
            name = metric_name(m, ev.fid_features)
            if m == MetricName.fid:
                feats = np.concatenate(self.feats)
                value = bootstrap.point_fid(feats, self.s.fid_root)
                out[name] = bootstrap.fid_measurement(value, feats, self.s.fid_root,
                                                      ref_feats=self.s.fid_ref_feats, **bs)
            elif m == MetricName.clip:
                out[name] = bootstrap.mean_measurement(np.concatenate(self.sims), **bs)
            else:
                out[name] = bootstrap.proportion_measurement(np.concatenate(self.hits), **bs)
        return out


def combine_seeds(per_seed: list[dict[str, dict]], confidence: float) -> dict[str, dict]:
    """Per metric, one measurement over the noise seeds (see bootstrap.over_seeds)."""
    from ladder_evaluator.metrics import bootstrap

    return {name: bootstrap.over_seeds([s[name] for s in per_seed], confidence) for name in per_seed[0]}


def pad_to(run: RunConfig) -> int:
    """The longest step count of the run's grid: every point runs one compiled sampling loop."""
    return max(p.steps for p in run_grid_points(run))


@dataclass
class Batch:
    """One batch in flight: its latents on the devices (being computed or copied back), and the
    host-side facts needed once they arrive."""

    x: jax.Array
    captions: tuple
    labels: np.ndarray | None
    keep: int  # rows that are real samples (the last batch is cut to numSamples)


def generate(run: RunConfig, apply: Callable, params, point: GridPoint, prompts: prompts_mod.Prompts,
             alphas_cumprod: np.ndarray, mesh: Mesh | None = None, seed_index: int = 0,
             decode: Decoder | None = None):
    """Yield (decoded images in [-1, 1], captions, prompted labels) batch by batch, numSamples in all,
    from noise seed evaluation.seed + seed_index.

    The batch is split over every device of `mesh` (default: all local devices; `params` should
    already be replicated on it, see `place_params`). One batch is kept in flight: batch b+1's
    noise and prompts are prepared and its sampling loop dispatched before batch b's images are
    handed to the caller, and b's copy to the host starts as soon as it is dispatched, so the
    metric work the caller does on batch b (host) overlaps batch b+1's sampling (devices)."""
    mesh = mesh or data_mesh(batch_size=run.evaluation.batch_size)
    decode = decode or decoder(run)
    pending: Batch | None = None
    for batch in dispatch(run, apply, params, point, prompts, alphas_cumprod, mesh, seed_index):
        if pending is not None:
            yield arrived(decode, pending)
        pending = batch
    if pending is not None:
        yield arrived(decode, pending)


def arrived(decode: Decoder, b: Batch):
    images = decode(b.x)[: b.keep]
    return images, b.captions[: b.keep], None if b.labels is None else b.labels[: b.keep]


def dispatch(run: RunConfig, apply: Callable, params, point: GridPoint, prompts: prompts_mod.Prompts,
             alphas_cumprod: np.ndarray, mesh: Mesh, seed_index: int = 0):
    """Start each batch's sampling on the mesh, one Batch per batch, without waiting for any."""
    ev, m = run.evaluation, run.model
    n, bs = ev.num_samples, ev.batch_size
    shape = (bs, m.latent_size, m.latent_size, m.latent_channels)
    eps = model.eps_fn(apply, params)
    slices = model.forward_rows(m, mesh.devices.flat[0].platform, mesh.devices.size)
    base = jax.random.key(ev.seed + seed_index)
    on_rows = rows(mesh)
    uncond = jax.device_put(np.broadcast_to(prompts.uncond, (bs, *prompts.uncond.shape)), on_rows)
    for b, start in enumerate(range(0, n, bs)):
        # Full batches only (one compiled program); the last one is truncated afterwards.
        key = jax.random.fold_in(base, b)
        ctx, caps, labs = prompts.take(start, bs)
        x = sample(
            eps, jax.device_put(jax.random.normal(key, shape, jnp.float32), on_rows), sampler=point.sampler,
            steps=point.steps, guidance=point.guidance, cond=jax.device_put(ctx, on_rows), uncond=uncond,
            key=jax.random.fold_in(key, 1), schedule=alphas_cumprod, eta=ev.ddim_eta, pad_to=pad_to(run),
            prediction_type=str(run.training.prediction_type), forward_rows=slices,
        )
        x.copy_to_host_async()
        yield Batch(x, caps, labs, min(bs, n - start))


def place_params(params, mesh: Mesh):
    """The parameters replicated on every device of the mesh (each device samples its rows)."""
    return jax.device_put(params, replicated(mesh))


def save_samples(run: RunConfig, step: int, point: GridPoint, images, labels) -> None:
    buf = io.BytesIO()
    k = min(SAMPLES_KEPT, len(images))
    arrays = dict(
        images=np.asarray(images[:k], np.float32), sampler=np.array(point.sampler),
        steps=np.array(point.steps), guidance=np.array(point.guidance),
        checkpoint_step=np.array(step), width=np.array(run.width),
    )
    if labels is not None:
        arrays["labels"] = np.asarray(labels[:k])
    np.savez_compressed(buf, **arrays)
    name = f"{point.sampler}-n{point.steps}-g{point.guidance:g}.npz"
    storage.write_bytes(storage.join(run.paths.samples, f"step-{step}", name), buf.getvalue())


def results_for(run: RunConfig, step: int, point: GridPoint, values: dict[str, dict],
                recorded: dict[str, str] | None = None,
                backends: dict[str, str] | None = None) -> list[Result]:
    """One Result per metric value. Its settings say how it was measured: `recorded` (provenance:
    schemes, dtypes, weights and reference hashes) and, per metric, metricsBackend (jax or torch:
    the CLIP port falls back to torch for models it cannot express) and the FID's features."""
    paper, with_g = sampling_cost(run.model.normalized_cost, point.steps, point.guidance)
    ev = run.evaluation
    settings = {
        "autoencoder": run.data.autoencoder.kind,
        "referenceSet": run.data.reference_set.name,
        "weights": "ema" if model.uses_ema(run) else "raw",
        "predictionType": str(run.training.prediction_type),
        "seed": str(ev.seed),
        "resamples": str(ev.bootstrap.resamples),
        **(recorded or {}),
    }
    if ev.seeds > 1:
        settings["seeds"] = str(ev.seeds)
    if point.sampler == "ddim":
        settings["eta"] = f"{ev.ddim_eta:g}"
    out = []
    for name, measured in values.items():
        features = fid_features_of(name)
        extra = {"features": features} if features else {}
        if backends and name in backends:
            extra["metricsBackend"] = backends[name]
        value = measured.get("value")
        if value is not None and not np.isfinite(value):  # Result records a failed measurement
            log.warning("c%d step %d %s: %s came out %s; recorded as a failed measurement",
                        run.width, step, point.label, name, value)
        out.append(Result(
            id=point.result_id(run.width, step, name),
            width=run.width, checkpoint_step=step, sampler=point.sampler, steps=point.steps,
            guidance=point.guidance, metric=name, num_samples=ev.num_samples,
            gflops_per_forward=run.model.gflops_per_forward, sampling_cost=paper,
            sampling_cost_with_guidance=with_g, settings={**settings, **extra}, **measured,
        ))
    return out


class Progress:
    """Progress callbacks; the CLI plugs rich bars in, tests use the silent default."""

    def start(self, total_points: int, samples_per_point: int) -> None: ...
    def point(self, label: str) -> None: ...
    def samples(self, n: int) -> None: ...
    def done_point(self, skipped: bool) -> None: ...
    def close(self) -> None: ...


def measure_point(run: RunConfig, scorers: Scorers, sample: Callable, progress: Progress):
    """One grid point's measurements over the noise seeds, and the images kept for the report.
    `sample(seed_index)` yields the point's batches."""
    kept_images, kept_labels, per_seed = [], [], []
    for seed_index in range(run.evaluation.seeds):
        acc = scorers.accumulator()
        for images, captions, labels in sample(seed_index):
            acc.add(images, captions, labels)
            if sum(len(k) for k in kept_images) < SAMPLES_KEPT:
                kept_images.append(images)
                kept_labels.append(labels)
            progress.samples(len(images))
        per_seed.append(acc.values())
    labels = None if kept_labels[0] is None else np.concatenate(kept_labels)
    return combine_seeds(per_seed, run.evaluation.bootstrap.confidence), np.concatenate(kept_images), labels


def evaluate(run: RunConfig, checkpoint_uri: str, store: ResultStore, *, force: bool = False,
             progress: Progress | None = None, worker: int = 0) -> list[Result]:
    """Evaluate worker `worker`'s share of the grid (of run.evaluation.workers) and store; returns
    the results written in this call."""
    progress = progress or Progress()
    steps = model.select_steps(run, checkpoint_uri)
    names = metric_names(run.evaluation)
    every = [(s, p) for s in steps for p in run_grid_points(run)]
    points = worker_share(every, run.evaluation.workers, worker)
    done = {} if force else store.existing()
    todo = [(s, p) for s, p in points
            if force or any(p.result_id(run.width, s, n) not in done for n in names)]
    progress.start(len(points), run.evaluation.num_samples * run.evaluation.seeds)
    written: list[Result] = []
    if not todo:
        for _ in points:
            progress.done_point(skipped=True)
        progress.close()
        return written
    decode = decoder(run)  # a missing or mismatched autoencoder fails before any compute
    prompts = prompts_mod.load(run)
    scorers = Scorers.build(run, prompts, decode.weights_hash)
    ac = diffusion.alphas_cumprod(run.training.noise_schedule)
    apply = model.make_apply(run)
    todo_set = set(todo)
    mesh = data_mesh(batch_size=run.evaluation.batch_size)
    log.info("sampling on %d device(s): %s", mesh.devices.size, mesh.devices[0].device_kind)
    if mesh.devices.size < jax.local_device_count():
        log.warning("evaluation.batchSize %d splits evenly over %d of the %d devices: make it a multiple "
                    "of %d to use them all", run.evaluation.batch_size, mesh.devices.size,
                    jax.local_device_count(), jax.local_device_count())
    params_step, params = None, None
    for step, point in points:
        if (step, point) not in todo_set:
            progress.done_point(skipped=True)
            continue
        if params_step != step:
            params, params_step = place_params(model.load_params(run, checkpoint_uri, step), mesh), step
        progress.point(f"c{run.width} step {step}: {point.label}")
        sample = partial(generate, run, apply, params, point, prompts, ac, mesh, decode=decode)
        values, images, labels = measure_point(run, scorers, sample, progress)
        results = results_for(run, step, point, values, scorers.recorded, scorers.backends)
        store.write(results)
        written.extend(results)
        try:
            save_samples(run, step, point, images, labels)
        except OSError as err:  # sample grids are a convenience; results are what matters
            log.warning("could not save sample images for %s: %s", point.label, err)
        progress.done_point(skipped=False)
    progress.close()
    return written
