"""Benchmark of the evaluator: sampling throughput, the FID pipeline against clean-fid, and the whole
evaluation pipeline (sample + decode + features) with the share of each stage.

    .venv/bin/python bench/sampling.py [--width 64] [--latent 32] [--batch 64] [--steps 4] [--repeats 2]
                                       [--fid-images 2000] [--inception-images 200] [--json out.json]
                                       [--pipeline-batch 4] [--pipeline-batches 2] [--pipeline-no-clip]
                                       [--skip-sampling] [--skip-fid] [--skip-pipeline]

1. images/s of DDIM, classifier-free guidance 7.5 (one batched cond+uncond forward per step), for
   the paper's U-Net layout at width c (SD v1.5 blocks, contextDim 1024, 77 tokens), by default
   the issue's configuration (c = 64, 32x32x4 latents, batch 64), whatever JAX device is present.
   Compilation is timed separately; throughput is the best of `repeats` steady-state runs, and
   utilisation is the model FLOPs (analytic counter x forwards) per second over a 2048^3 matmul
   timed before and after every run in the same process (median), so it is a ratio.
2. FID pipeline images/s: ladder_evaluator.metrics.fid from memory (features of both image sets,
   statistics, Frechet distance) against clean-fid's compute_fid(fdir1, fdir2) on PNG folders of
   the same images, with the same feature model and resize; reported with and without writing the
   PNGs the folder path needs. Two feature models: the offline digits classifier on 8x8 digits, and
   torchvision's Inception-v3 architecture with random weights behind clean-fid's 299x299 "clean"
   resize (the production extractor's compute; the real weights are not downloadable here).
3. The whole evaluation pipeline, images/s per device (`--skip-pipeline` skips it): the
   evaluator's own code at one fixed configuration, by default c = 64 (SD v1.5 blocks), 32x32x4
   latents, DDIM 4 steps, guidance 7.5, batch `--pipeline-batch` 4 (small enough for a 2-core
   CPU) x `--pipeline-batches` 2 per grid point; the SD-config VAE (random weights, ~84M
   parameters, saved and loaded as real weights are) decoding to 256x256; the real Inception
   (default_1.pt) on device (metrics backend jax) behind clean-fid's "clean" resize on the host
   threads; CLIP ViT-B-32 image and text towers in JAX at random weights (`--pipeline-no-clip`
   leaves them out); FID against a synthetic reference (mu 0, sigma I, 2048-d). Two measurements:
   a. Stages one at a time, each waited for, one batch per round (the first round is compile +
      first run; steady state is the best of `repeats`): sample (evaluate.dispatch), decode
      (evaluate.arrived: the SD VAE), fid_preprocess (fid.preprocess: uint8 + clean resize),
      inception (the extractor's batch_features), clip_preprocess and clip_towers
      (JaxClipScorer.inputs, then its image and text towers). Seconds and share of each in a
      batch's serial time, compile seconds of the device stages apart, and each device stage's
      GFLOP/s (ladder_api.frozen_cost) over a 2048^3 matmul timed before and after.
   b. The evaluator's pipelined loop as evaluate.measure_point runs it (evaluate.generate, one
      batch in flight, feeding Accumulator.add): images/s, per device, against the stages
      serially, and the device idle fraction 1 - device busy / wall, busy being the device
      stages' steady-state seconds (sample, decode, inception, clip_towers) x batches. On a CPU
      the "device" and the host share the same cores, so idle there mostly measures per-batch
      overhead and load; bench/sampling_mesh.py measures the overlap of sampling alone.
   c. Once per grid point, whatever numSamples: statistics (Accumulator.values: the FID with its
      bootstrap; the CLIP score's mean is not included, CLIP being added to the Scorers after
      build rather than through a weights file) and write (save_samples), seconds apart.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def bench_sampling(width: int, latent: int, batch: int, steps: int, guidance: float, repeats: int,
                   forward_rows: list[int | None] = (None,), xla_defaults: bool = False) -> dict:
    import jax
    import jax.numpy as jnp

    from ladder_api.ladder import PAPER_CONTEXT_DIM, PAPER_CONTEXT_TOKENS, UNetShape, forward_flops
    from ladder_evaluator.model import eps_fn
    from ladder_trainer.models import build_unet, init_params

    shape = UNetShape(base_channels=width)
    unet = build_unet(shape)
    params = init_params(shape, jax.random.key(0))

    def apply(p, x, t, ctx):
        return unet.apply({"params": p}, x, t.astype(jnp.float32), ctx)

    fn = eps_fn(apply, params)
    key = jax.random.key(1)
    x = jax.random.normal(key, (batch, latent, latent, 4))
    cond = jax.random.normal(key, (batch, PAPER_CONTEXT_TOKENS, PAPER_CONTEXT_DIM))
    uncond = jnp.zeros_like(cond)

    from ladder_api.frontier import forwards_per_step
    from ladder_evaluator.sampling import program, program_inputs
    from ladder_trainer.metrics import matmul_flops_per_s

    variants, first = {}, {}
    for rows in forward_rows:  # each variant compiled once, then all timed in turns
        for product in (False, True) if xla_defaults else (True,):
            kw = dict(sampler="ddim", steps=steps, guidance=guidance, cond=cond, uncond=uncond,
                      forward_rows=rows)
            args = program_inputs(fn, x, **kw)[0]
            t0 = time.perf_counter()
            # the product's options (ladder_trainer.compile_options: YNN off on a CPU) or XLA's defaults
            compiled = program(fn, x, compiler_options=None if product else {}, **kw)
            name = f"rows={rows or 'all'}" + ("" if product else " xla-defaults")
            variants[name] = (compiled, args)
            compiled(*args).block_until_ready()
            first[name] = time.perf_counter() - t0
    times = {k: [] for k in variants}
    matmul = [matmul_flops_per_s(2048, 2)]
    for _ in range(repeats):  # the reference matmul brackets every round: load changes
        for k, (compiled, args) in variants.items():
            t0 = time.perf_counter()
            compiled(*args).block_until_ready()
            times[k].append(time.perf_counter() - t0)
        matmul.append(matmul_flops_per_s(2048, 2))
    gflops = forward_flops(shape, latent, PAPER_CONTEXT_TOKENS) / 1e9
    rate = float(np.median(matmul))
    out = {
        "device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform,
        "width": width, "latent": latent, "batch": batch, "steps": steps, "guidance": guidance,
        "gflops_per_forward": round(gflops, 3),
        "matmul_gflops_per_s": [round(m / 1e9, 1) for m in matmul], "variants": {},
    }
    base = min(times[next(iter(times))])
    for k, ts in times.items():
        best = min(ts)
        achieved = gflops * 1e9 * forwards_per_step(guidance) * steps * batch / best
        out["variants"][k] = {
            "compile_plus_first_s": round(first[k], 2), "steady_s": round(best, 3),
            "images_per_s": round(batch / best, 3), "achieved_gflops_per_s": round(achieved / 1e9, 1),
            "utilisation_vs_matmul": round(achieved / rate, 3), "speed_vs_first": round(base / best, 2),
        }
    return out


def _write_pngs(images_u8: np.ndarray, folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, im in enumerate(images_u8):
        Image.fromarray(im).save(folder / f"{i:05d}.png")


def bench_fid(name: str, extractor, gen: np.ndarray, ref: np.ndarray, batch: int) -> dict:
    import torch
    from cleanfid import fid as cleanfid_fid

    from ladder_evaluator.metrics import fid
    from ladder_evaluator.metrics.images import to_uint8_rgb

    n = len(gen) + len(ref)
    fid.features(gen[:2], extractor, batch)  # warm-up (lazy torch init), so neither side pays it
    t0 = time.perf_counter()
    try:
        ours = fid.frechet(*fid.statistics(fid.features(gen, extractor, batch)),
                           *fid.statistics(fid.features(ref, extractor, batch)))
    except ValueError:  # fewer images than feature dimensions: singular covariances
        ours = float("nan")
    t_ours = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        _write_pngs(to_uint8_rgb(gen), Path(d) / "gen")
        _write_pngs(to_uint8_rgb(ref), Path(d) / "ref")
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            theirs = cleanfid_fid.compute_fid(
                str(Path(d) / "gen"), str(Path(d) / "ref"), mode="clean",
                custom_feat_extractor=extractor.model, custom_fn_resize=extractor.fn_resize,
                num_workers=0, batch_size=batch, device=torch.device("cpu"), verbose=False,
            )
        except ValueError:  # the same singular case, raised inside clean-fid after all its work
            theirs = float("nan")
        t_theirs = time.perf_counter() - t0
    return {
        "features": name, "images": n, "fid_ours": round(ours, 6), "fid_cleanfid": round(float(theirs), 6),
        "ours_images_per_s": round(n / t_ours, 1),
        "cleanfid_folders_images_per_s": round(n / t_theirs, 1),
        "cleanfid_with_png_write_images_per_s": round(n / (t_theirs + t_write), 1),
        "speedup_vs_folders": round(t_theirs / t_ours, 2),
        "speedup_vs_folders_with_write": round((t_theirs + t_write) / t_ours, 2),
    }


def inception_standin():
    """torchvision Inception-v3, random weights, pool features (2048), behind clean-fid's resize."""
    import torch
    import torchvision
    from cleanfid.resize import build_resizer

    from ladder_evaluator.metrics.fid import FeatureExtractor

    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    net.fc = torch.nn.Identity()
    net.eval()

    def model(x):
        return net((x - 128.0) / 128.0)

    return FeatureExtractor("inception-v3-random", model, build_resizer("clean"), 2048, torch.device("cpu"))


DEVICE_STAGES = ("sample", "decode", "inception", "clip_towers")


def pipeline_setup(a, workdir: Path):
    """The evaluator's objects for the whole-pipeline run, built as evaluate.evaluate builds them:
    the run (sd-vae, Inception FID), its decoder, prompts, Scorers (with a JAX CLIP scorer added
    unless a.pipeline_no_clip), the U-Net's apply and placed parameters, the mesh and the grid point."""
    import types

    import jax
    from sampling_mesh import fake_prompts, make_run  # bench/, beside this script

    from ladder_api.grid import grid_points
    from ladder_evaluator.decode import decoder
    from ladder_evaluator.evaluate import Scorers, place_params
    from ladder_evaluator.metrics import fid, inception_weights
    from ladder_evaluator.model import make_apply
    from ladder_trainer.data_mesh import data_mesh
    from ladder_trainer.diffusion import alphas_cumprod
    from ladder_trainer.models import autoencoder as ae
    from ladder_trainer.models import init_params
    from ladder_trainer.weights import save_autoencoder

    vae = str(workdir / "vae")
    save_autoencoder(vae, ae.SD_VAE, ae.init_params(ae.SD_VAE, seed=0))
    stats = str(workdir / "reference-stats.npz")
    fid.save_stats(stats, np.zeros(fid.INCEPTION_DIM), np.eye(fid.INCEPTION_DIM))
    cfg = types.SimpleNamespace(width=a.width, latent=a.latent, dtype="float32", steps=a.steps,
                                guidance=a.guidance, batch=a.pipeline_batch, batches=a.pipeline_batches)
    run = make_run(
        cfg, output_uri=str(workdir / "out"),
        data={"autoencoder": {"kind": "sd-vae", "weightsUri": vae, "scalingFactor": ae.SD_VAE.scaling_factor},
              "referenceSet": {"name": "bench", "uri": "builtin:digits-test", "statsUri": stats}},
        fidFeatures="inception", inceptionWeightsUri=str(inception_weights.bundled_path()),
    )
    mesh = data_mesh(batch_size=run.evaluation.batch_size)
    decode = decoder(run)
    prompts = fake_prompts(run)
    scorers = Scorers.build(run, prompts, decode.weights_hash)
    if not a.pipeline_no_clip:
        from metrics import random_clip  # bench/metrics.py

        scorers.clip = random_clip(run.evaluation.batch_size, mesh)[1]
    params = place_params(init_params(run.model, jax.random.key(0)), mesh)
    return types.SimpleNamespace(
        run=run, mesh=mesh, decode=decode, prompts=prompts, scorers=scorers, params=params,
        apply=make_apply(run), point=grid_points(run.evaluation)[0],
        ac=alphas_cumprod(run.training.noise_schedule),
    )


def stage_round(p) -> dict[str, float]:
    """One batch through every stage of the evaluator's path, each waited for: seconds per stage."""
    import jax

    from ladder_evaluator.evaluate import arrived, dispatch
    from ladder_evaluator.metrics import fid

    t: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        t[name], clock = now - clock, now

    batch = next(dispatch(p.run, p.apply, p.params, p.point, p.prompts, p.ac, p.mesh))
    jax.block_until_ready(batch.x)
    lap("sample")
    images, captions, _ = arrived(p.decode, batch)
    lap("decode")
    resized = fid.preprocess(images, p.scorers.fid_extractor)
    lap("fid_preprocess")
    p.scorers.fid_extractor.batch_features(resized)
    lap("inception")
    if p.scorers.clip is not None:
        pixels, tokens = p.scorers.clip.inputs(images, captions)
        lap("clip_preprocess")
        p.scorers.clip.image(pixels)
        p.scorers.clip.text(tokens)
        lap("clip_towers")
    return t


def point_tail(p, acc, images) -> dict[str, float]:
    """What evaluate does once per grid point after its batches: the metrics with their bootstrap
    (Accumulator.values), then the kept sample images (save_samples). Seconds of each."""
    from ladder_evaluator.evaluate import save_samples

    t0 = time.perf_counter()
    acc.values()
    t1 = time.perf_counter()
    save_samples(p.run, 0, p.point, images, None)
    return {"statistics": t1 - t0, "write": time.perf_counter() - t1}


def pipelined_point(p) -> tuple[float, object, np.ndarray]:
    """The evaluator's per-point loop (evaluate.measure_point for one noise seed): generate, one
    batch in flight, feeding Accumulator.add. Wall seconds, the filled accumulator, the images."""
    from functools import partial

    from ladder_evaluator.evaluate import generate

    acc = p.scorers.accumulator()
    sample = partial(generate, p.run, p.apply, p.params, p.point, p.prompts, p.ac, p.mesh, decode=p.decode)
    t0 = time.perf_counter()
    kept = []
    for images, captions, labels in sample(0):
        acc.add(images, captions, labels)
        kept.append(images)
    return time.perf_counter() - t0, acc, np.concatenate(kept)


def bench_pipeline(a) -> dict:
    from ladder_api import frozen_cost
    from ladder_api.frontier import forwards_per_step
    from ladder_trainer.metrics import matmul_flops_per_s

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        p = pipeline_setup(a, Path(d))
        setup_s = time.perf_counter() - t0
        matmul = [matmul_flops_per_s(2048, 2)]
        rounds = [stage_round(p) for _ in range(1 + a.repeats)]
        wall, acc, images = pipelined_point(p)
        tail = point_tail(p, acc, images)
        matmul.append(matmul_flops_per_s(2048, 2))
    ev, n_dev = p.run.evaluation, p.mesh.devices.size
    bs, batches = ev.batch_size, ev.num_samples // ev.batch_size
    first, best = rounds[0], {k: min(r[k] for r in rounds[1:]) for k in rounds[0]}
    per_batch = sum(best.values())  # every per-image stage, one after the other
    point = sum(tail.values())
    busy = sum(best.get(k, 0.0) for k in DEVICE_STAGES) * batches
    gflop = {  # per image
        "sample": p.run.model.gflops_per_forward * a.steps * forwards_per_step(a.guidance),
        "decode": frozen_cost.decoder_flops(frozen_cost.SD_DECODER, a.latent) / 1e9,
        "inception": frozen_cost.INCEPTION_V3_FLOPS / 1e9,
        "clip_towers": frozen_cost.vision_tower_flops(frozen_cost.CLIP_VIT_B32) / 1e9,  # image tower only
    }
    rate = float(np.median(matmul))
    side = p.decode.vae.factor * a.latent
    n = ev.num_samples
    return {
        "config": f"c={a.width}, {a.latent}x{a.latent}x4 latents, DDIM {a.steps} steps, guidance "
                  f"{a.guidance:g}, batch {bs} x {batches}, SD VAE -> {side}x{side}, Inception (jax)"
                  + ("" if a.pipeline_no_clip else ", CLIP ViT-B-32 (jax, random weights)"),
        "device": str(p.mesh.devices.flat[0].device_kind), "devices": n_dev, "images": n,
        "setup_s": round(setup_s, 1),
        "compile_s": {k: round(first[k] - best[k], 2) for k in DEVICE_STAGES if k in best},
        "stage_s_per_batch": {k: round(v, 3) for k, v in best.items()},
        "stage_share": {k: round(v / per_batch, 3) for k, v in best.items()},
        "stage_gflop_per_image": {k: round(v, 1) for k, v in gflop.items() if k in best},
        "stage_utilisation_vs_matmul": {k: round(gflop[k] * 1e9 * bs / best[k] / rate, 3)
                                        for k in gflop if k in best},
        "matmul_gflops_per_s": [round(m / 1e9, 1) for m in matmul],
        # once per grid point, whatever numSamples (the bootstrap grows with it; see metrics.bootstrap)
        "point_s": {k: round(v, 3) for k, v in tail.items()},
        "point_share_at_this_num_samples": round(point / (per_batch * batches + point), 3),
        "serial_loop_s": round(per_batch * batches, 2), "pipelined_loop_s": round(wall, 2),
        "images_per_s_serial": round(bs / per_batch, 4),
        "images_per_s": round(n / wall, 4),
        "images_per_s_per_device": round(n / wall / n_dev, 4),
        "speedup_pipelined_vs_serial": round(per_batch * batches / wall, 3),
        "device_idle_pipelined": round(max(0.0, 1 - busy / wall), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=4, help="utilisation is per step; 50 for the paper's count")
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--forward-rows", default="all",
                   help="comma-separated rows per U-Net forward to compare (all: the whole batch at once)")
    p.add_argument("--xla-defaults", action="store_true",
                   help="each variant also with XLA's defaults, not ladder_trainer.compile_options")
    p.add_argument("--fid-images", type=int, default=2000, help="digits images per set (gen and ref)")
    p.add_argument("--inception-images", type=int, default=100, help="images per set, Inception stand-in")
    p.add_argument("--skip-sampling", action="store_true")
    p.add_argument("--skip-fid", action="store_true")
    p.add_argument("--skip-digits", action="store_true")
    p.add_argument("--skip-pipeline", action="store_true", help="leave out the whole-pipeline measurement")
    p.add_argument("--pipeline-batch", type=int, default=4, help="whole pipeline: images per batch")
    p.add_argument("--pipeline-batches", type=int, default=2, help="whole pipeline: batches per grid point")
    p.add_argument("--pipeline-no-clip", action="store_true", help="whole pipeline without the CLIP towers")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    out: dict = {"host": platform.node(), "python": platform.python_version()}
    if not a.skip_sampling:
        rows = [None if r == "all" else int(r) for r in a.forward_rows.split(",")]
        out["sampling"] = bench_sampling(a.width, a.latent, a.batch, a.steps, a.guidance, a.repeats, rows,
                                         a.xla_defaults)
        print(json.dumps(out["sampling"]), flush=True)
    if not a.skip_fid:
        import torch

        from ladder_evaluator.metrics import digits_classifier
        from ladder_trainer.data import digits

        torch.set_num_threads(max(1, torch.get_num_threads()))
        imgs = np.concatenate([digits.load("train").images, digits.load("test").images])
        rng = np.random.default_rng(0)
        gen = imgs[rng.integers(0, len(imgs), a.fid_images)]
        ref = imgs[rng.integers(0, len(imgs), a.fid_images)]
        if not a.skip_digits:
            with tempfile.TemporaryDirectory() as cache:
                ext = digits_classifier.extractor(cache, torch.device("cpu"))
                out["fid_digits"] = bench_fid("digits-classifier", ext, gen, ref, 256)
            print(json.dumps(out["fid_digits"]), flush=True)
        noise = rng.standard_normal((2 * a.inception_images, 64, 64, 3)) * 0.5
        big = np.clip(noise, -1, 1).astype(np.float32)
        out["fid_inception_standin"] = bench_fid(
            "inception-v3 (random weights)", inception_standin(), big[: a.inception_images],
            big[a.inception_images:], 50,
        )
        print(json.dumps(out["fid_inception_standin"]), flush=True)
    if not a.skip_pipeline:
        out["pipeline"] = r = bench_pipeline(a)
        print(json.dumps(r), flush=True)
        shares = ", ".join(f"{k} {v:.0%}" for k, v in r["stage_share"].items())
        print(f"whole pipeline ({r['config']}): {r['images_per_s_per_device']} images/s per device; "
              f"{shares}; device idle {r['device_idle_pipelined']:.0%}", flush=True)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
