"""Benchmark of the evaluator: sampling throughput and the FID pipeline against clean-fid.

    .venv/bin/python bench/sampling.py [--width 64] [--latent 32] [--batch 64] [--steps 4] [--repeats 2]
                                       [--fid-images 2000] [--inception-images 200] [--json out.json]

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
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
