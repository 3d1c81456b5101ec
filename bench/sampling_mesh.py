"""The evaluator's sampling over the evaluation slice: sharded against one device, utilisation
against the in-run matmul (and the datasheet peak), and how much the devices wait on the host.

    .venv/bin/python bench/sampling_mesh.py [--width 64] [--latent 32] [--batch 64] [--steps 4]
    XLA_FLAGS=--xla_force_host_platform_device_count=2 .venv/bin/python bench/sampling_mesh.py ...

1. Sharded vs one device: images/s of the evaluator's compiled sampling loop (DDIM, guidance on:
   one batched cond+uncond forward per step) with the batch split over every local device, and
   on the first device alone; the ratio is the scaling. Each device's share of the compiled
   program is checked to be 1/N of the batch (the rows of every shard of the result). Fake CPU
   devices share this machine's cores: there the ratio is ~1 by construction and only the share
   check means anything; on a slice of real chips the ratio is the speed-up.
2. Utilisation: model FLOPs (ladder_api's analytic forward count x forwards per image) per second
   per device, over a large matmul's rate timed in the same process (and over the datasheet peak
   where ladder_trainer.metrics.PEAK_FLOPS knows the device).
3. Host/device overlap: `ladder_evaluator.evaluate.generate` (the evaluator's loop: one batch in
   flight, asynchronous copies) feeding a host stage that does the per-image work of the FID path
   (uint8 conversion and clean-fid's "clean" resize to 299x299), against the same two stages run
   one after the other. Device idle fraction = 1 - device busy time / wall time, where the busy
   time is the sampling time measured alone. On a CPU "device" the host stage competes for the
   same cores, so the overlap shows up only on an accelerator.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_run(a, data: dict | None = None, output_uri: str | None = None, **evaluation):
    """The run the benches drive: a.width, a.latent, a.dtype, a.steps, a.guidance, a.batch x
    a.batches samples; pixel space (identity) and digits features unless `data` (merged into
    spec.data) and `evaluation` (merged into spec.evaluation) say otherwise (bench/sampling.py's
    whole pipeline: the SD VAE and Inception)."""
    from ladder_api.plan import expand
    from ladder_api.spec import ScalingExperiment

    spec = {
        "ladder": {"widths": [a.width], "latentSize": a.latent, "latentChannels": 4,
                   "contextDim": 1024, "contextTokens": 77},
        "data": {"trainUri": "gs://unused/", "autoencoder": {"kind": "identity"}, **(data or {})},
        "training": {"computeDtype": a.dtype},
        "evaluation": {"samplers": ["ddim"], "steps": [a.steps], "guidanceScales": [a.guidance],
                       "numSamples": a.batch * a.batches, "batchSize": a.batch,
                       "metrics": ["fid"], "fidFeatures": "digits-classifier", **evaluation},
        "resources": {"slices": [{"sliceType": "v5p-8"}]},
    }
    if output_uri:
        spec["storage"] = {"outputUri": output_uri}
    exp = ScalingExperiment.model_validate({
        "apiVersion": "ladder.dev/v1alpha1", "kind": "ScalingExperiment", "metadata": {"name": "bench"},
        "spec": spec,
    })
    return expand(exp).runs[0]


def fake_prompts(run, n: int = 256):
    from ladder_evaluator.prompts import Prompts

    rng = np.random.default_rng(0)
    t, d = run.model.context_tokens, run.model.context_dim
    ctx = rng.standard_normal((n, t, d)).astype(np.float32)
    return Prompts(tuple(f"prompt {i}" for i in range(n)), ctx, np.zeros((t, d), np.float32), None, None)


def best_time(fn, repeats: int) -> float:
    fn()  # compile / warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def sampling_rate(run, params, prompts, mesh, repeats: int) -> tuple[float, list[int]]:
    """Seconds per batch of the sampling loop alone on `mesh`, and the rows each device held."""
    import jax

    from ladder_api.grid import grid_points
    from ladder_evaluator.evaluate import dispatch, place_params
    from ladder_evaluator.model import make_apply
    from ladder_trainer.diffusion import alphas_cumprod

    point = grid_points(run.evaluation)[0]
    placed = place_params(params, mesh)
    ac = alphas_cumprod(run.training.noise_schedule)
    apply = make_apply(run)
    shard_rows: list[int] = []

    def one_batch():
        batch = next(dispatch(run, apply, placed, point, prompts, ac, mesh))
        jax.block_until_ready(batch.x)
        shard_rows[:] = [s.data.shape[0] for s in batch.x.addressable_shards]

    return best_time(one_batch, repeats), shard_rows


@functools.cache
def _resizer():
    from cleanfid.resize import build_resizer

    return build_resizer("clean")


def host_stage(images: np.ndarray) -> None:
    """The FID path's per-image host work: uint8 RGB and clean-fid's clean resize to 299x299."""
    from ladder_evaluator.metrics.images import to_uint8_rgb

    resize = _resizer()
    for im in to_uint8_rgb(images[..., :3]):
        resize(im)


def overlap(run, params, prompts, mesh, device_s: float) -> dict:
    """The evaluator's pipelined loop against sampling then host work, batch after batch."""
    import jax

    from ladder_api.grid import grid_points
    from ladder_evaluator.decode import decoder
    from ladder_evaluator.evaluate import arrived, dispatch, generate, place_params
    from ladder_evaluator.model import make_apply
    from ladder_trainer.diffusion import alphas_cumprod

    point = grid_points(run.evaluation)[0]
    placed = place_params(params, mesh)
    ac = alphas_cumprod(run.training.noise_schedule)
    apply = make_apply(run)
    host_stage(np.zeros((1, 8, 8, 3), np.float32))  # imports and the resizer, outside the timing
    t0 = time.perf_counter()
    host_s = 0.0
    for images, _, _ in generate(run, apply, placed, point, prompts, ac, mesh):
        h0 = time.perf_counter()
        host_stage(images)
        host_s += time.perf_counter() - h0
    pipelined = time.perf_counter() - t0
    t0 = time.perf_counter()
    for batch in dispatch(run, apply, placed, point, prompts, ac, mesh):
        jax.block_until_ready(batch.x)  # wait: nothing else is queued while the host works
        host_stage(arrived(decoder(run), batch)[0])
    serial = time.perf_counter() - t0
    batches = run.evaluation.num_samples // run.evaluation.batch_size
    busy = device_s * batches
    return {
        "batches": batches, "device_s_per_batch": round(device_s, 3),
        "host_s_per_batch": round(host_s / batches, 3),
        "stage_share_sampling": round(busy / (busy + host_s), 3),
        "stage_share_host": round(host_s / (busy + host_s), 3),
        "serial_s": round(serial, 2), "pipelined_s": round(pipelined, 2),
        "speedup_pipelined_vs_serial": round(serial / pipelined, 3),
        "device_idle_serial": round(max(0.0, 1 - busy / serial), 3),
        "device_idle_pipelined": round(max(0.0, 1 - busy / pipelined), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=4, help="sampling steps (utilisation is per step)")
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batches", type=int, default=3, help="batches in the overlap measurement")
    p.add_argument("--skip-overlap", action="store_true")
    p.add_argument("--json", type=Path)
    a = p.parse_args()

    import jax
    import jax.numpy as jnp

    from ladder_api.frontier import forwards_per_step
    from ladder_trainer.data_mesh import data_mesh
    from ladder_trainer.metrics import PEAK_FLOPS, matmul_flops_per_s
    from ladder_trainer.models import init_params

    run = make_run(a)
    params = init_params(run.model, jax.random.key(0))
    prompts = fake_prompts(run)
    dev = jax.local_devices()
    everyone, first = data_mesh(dev, batch_size=a.batch), data_mesh(dev[:1])
    matmul = matmul_flops_per_s(2048, repeats=3, dtype=jnp.bfloat16 if a.dtype == "bfloat16" else jnp.float32)
    peak = next((v for k, v in PEAK_FLOPS.items() if dev[0].device_kind.startswith(k)), None)
    flops_per_image = run.model.gflops_per_forward * 1e9 * a.steps * forwards_per_step(a.guidance)
    out: dict = {"device": dev[0].device_kind, "devices": len(dev), "width": a.width, "latent": a.latent,
                 "batch": a.batch, "steps": a.steps, "guidance": a.guidance, "dtype": a.dtype,
                 "matmul_tflops": round(matmul / 1e12, 3)}
    one_s, _ = sampling_rate(run, params, prompts, first, a.repeats)
    all_s, shard_rows = sampling_rate(run, params, prompts, everyone, a.repeats)
    n = everyone.devices.size
    assert shard_rows == [a.batch // n] * n, f"shares {shard_rows} of a batch of {a.batch} on {n} devices"
    rate = a.batch / all_s
    out.update({
        "rows_per_device": shard_rows, "images_per_s_one_device": round(a.batch / one_s, 3),
        "images_per_s_all_devices": round(rate, 3), "speedup_all_vs_one": round(one_s / all_s, 3),
        "devices_used": n, "images_per_s_per_device": round(rate / n, 3),
        "utilisation_vs_matmul_one_device": round(flops_per_image * a.batch / one_s / matmul, 3),
        "utilisation_vs_matmul_per_device": round(flops_per_image * rate / n / matmul, 3),
    })
    if peak:
        out["utilisation_vs_peak_per_device"] = round(flops_per_image * rate / n / peak, 4)
    print(json.dumps(out), flush=True)
    if not a.skip_overlap:
        out["overlap"] = overlap(run, params, prompts, everyone, all_s)
        print(json.dumps(out["overlap"]), flush=True)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
