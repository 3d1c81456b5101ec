"""Benchmark of the SD autoencoder: the ladder's Flax AutoencoderKL against diffusers' torch one.

    .venv/bin/python bench/autoencoder.py [--size 128] [--batch 4] [--repeats 3]
                                          [--dtype float32|bfloat16] [--json out.json]

Both sides run the SD VAE architecture (sd-vae-ft-mse's config: 128/256/512/512, 2 layers per
block, 83.7M parameters) with the same weights: a randomly initialised diffusers AutoencoderKL is
written with ``save_pretrained`` and read back through ``ladder_trainer.weights.load_autoencoder``,
the path real weights take. The outputs are checked equal before anything is timed. Then images/s
of encode (posterior mean) and decode on `batch` images of `size` x `size`, on whatever device JAX
and torch have here (CPU on the development VM): compile time separately, throughput the best of
`repeats` steady-state runs, and the ratio JAX / torch measured in this one process.
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

SD_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
              norm_num_groups=32, down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def best_of(fn, repeats: int) -> float:
    return min(timed(fn)[1] for _ in range(repeats))


def max_rel_error(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="JAX compute dtype")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import jax
    import torch
    from diffusers import AutoencoderKL

    from ladder_trainer.models import autoencoder as ae
    from ladder_trainer.weights import load_autoencoder

    torch.manual_seed(0)
    torch_vae = AutoencoderKL(**SD_VAE).eval()
    with tempfile.TemporaryDirectory() as d:
        torch_vae.save_pretrained(d)
        config, params = load_autoencoder(d)
    codec = ae.codec(config, args.dtype)
    x = np.random.default_rng(0).uniform(-1, 1, (args.batch, args.size, args.size, 3)).astype(np.float32)
    x_t = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    # First calls (JAX: trace + compile + run), which also give the outputs the parity check needs.
    latents, jax_first_enc = timed(lambda: codec.encode(params, x).block_until_ready())
    images, jax_first_dec = timed(lambda: codec.decode(params, latents).block_until_ready())
    z_t = torch.from_numpy(np.asarray(latents).transpose(0, 3, 1, 2) / config.scaling_factor)
    with torch.no_grad():
        ref_mean, torch_first_enc = timed(lambda: torch_vae.encode(x_t).latent_dist.mean)
        ref_images, torch_first_dec = timed(lambda: torch_vae.decode(z_t).sample)
    parity = {
        "encode_max_rel_error": max_rel_error(np.asarray(latents) / config.scaling_factor,
                                              ref_mean.numpy().transpose(0, 2, 3, 1)),
        "decode_max_rel_error": max_rel_error(images, ref_images.numpy().transpose(0, 2, 3, 1)),
    }
    limit = 1e-4 if args.dtype == "float32" else 0.05
    assert max(parity.values()) < limit, parity

    rows = {}
    for name, jax_fn, torch_fn, jax_first, torch_first in [
        ("encode", lambda: codec.encode(params, x).block_until_ready(),
         lambda: torch_vae.encode(x_t).latent_dist.mean, jax_first_enc, torch_first_enc),
        ("decode", lambda: codec.decode(params, latents).block_until_ready(),
         lambda: torch_vae.decode(z_t).sample, jax_first_dec, torch_first_dec),
    ]:
        jax_best = best_of(jax_fn, args.repeats)
        with torch.no_grad():
            torch_best = best_of(torch_fn, args.repeats)
        rows[name] = {
            "jax_compile_plus_first_s": round(jax_first, 2), "jax_steady_s": round(jax_best, 3),
            "torch_first_s": round(torch_first, 2), "torch_steady_s": round(torch_best, 3),
            "jax_images_per_s": round(args.batch / jax_best, 3),
            "torch_images_per_s": round(args.batch / torch_best, 3),
            "ratio_jax_over_torch": round(torch_best / jax_best, 3),
        }
    result = {
        "machine": platform.machine(), "jax_device": str(jax.devices()[0].device_kind),
        "torch_threads": torch.get_num_threads(), "size": args.size, "batch": args.batch,
        "jax_compute_dtype": args.dtype, "params": ae.param_count(config), **parity, **rows,
    }
    print(f"SD VAE ({result['params']:,} params), batch {args.batch} of {args.size}x{args.size}, "
          f"JAX {args.dtype} on {result['jax_device']} vs torch float32 ({result['torch_threads']} threads)")
    print(f"parity: encode {parity['encode_max_rel_error']:.1e}, decode {parity['decode_max_rel_error']:.1e} "
          "(max abs error / max abs torch output)")
    print("| op | JAX compile + first | JAX steady | torch steady | JAX img/s | torch img/s | JAX / torch |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['jax_compile_plus_first_s']} s | {r['jax_steady_s']} s | "
              f"{r['torch_steady_s']} s | {r['jax_images_per_s']} | {r['torch_images_per_s']} | "
              f"{r['ratio_jax_over_torch']}x |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
