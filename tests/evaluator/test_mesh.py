"""Sampling split over a mesh of 8 devices gives the images (and so the metric values) of one
device, with each device computing 1/8 of the batch, for a sampler that draws noise at every
step too.

The 8 devices are fake CPU devices (XLA_FLAGS, which must be set before JAX starts, so the mesh
runs in a subprocess). They share this machine's cores, so this proves correctness, not speed;
bench/sampling.py measures the scaling where several real devices exist.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ladder_trainer.data_mesh import data_mesh, usable_devices
from tests.trainer.conftest import trainer_env

SCRIPT = r"""
import sys, tempfile
import jax, numpy as np
from ladder_api.grid import GridPoint
from ladder_api.plan import expand
from ladder_evaluator import evaluate as E, model, prompts as P, sampling
from ladder_trainer.data_mesh import data_mesh, rows
from ladder_trainer import diffusion
from ladder_trainer.models import init_params
from tests.evaluator.test_cli import _experiment

assert len(jax.devices()) == 8, jax.devices()
run = expand(_experiment(tempfile.mkdtemp(), numSamples=12, batchSize=8)).runs[0]
prompts = P.load(run)
ac = diffusion.alphas_cumprod(run.training.noise_schedule)
apply = model.make_apply(run)
params = init_params(run.model, jax.random.key(0))
point = GridPoint("ddpm", 2, 3.0)  # noise inside the loop too: the same on any mesh
out, labels = {}, None
for n in (1, 8):
    mesh = data_mesh(jax.devices()[:n])
    batches = list(E.generate(run, apply, E.place_params(params, mesh), point, prompts, ac, mesh))
    out[n] = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[2] for b in batches])

# the compiled loop on 8 devices: 8 rows per batch, cond+uncond = 16 rows per forward, of which
# each device's program holds 2
mesh = data_mesh()
x = jax.device_put(np.zeros((8, 8, 8, 1), np.float32), rows(mesh))
ctx = jax.device_put(np.zeros((8, 4, 8), np.float32), rows(mesh))
hlo = sampling.program(model.eps_fn(apply, E.place_params(params, mesh)), x, sampler="ddim", steps=2,
                       guidance=3.0, cond=ctx, uncond=ctx, schedule=ac, pad_to=2).as_text()
assert "f32[2,8,8,16]" in hlo, "no per-device share of the first convolution's output"
assert "f32[16,8,8,16]" not in hlo, "the whole batch is computed on a device"
# in slices of 8 rows (the CPU's forward_rows): each slice keeps one row on every device, no row
# moves between devices, and the images are those of the whole batch at once
kw = dict(sampler="ddim", steps=2, guidance=3.0, cond=ctx, uncond=ctx, schedule=ac, pad_to=2)
fn = model.eps_fn(apply, E.place_params(params, mesh))
sliced = sampling.program(fn, x, forward_rows=8, **kw).as_text()
assert "f32[1,8,8,16]" in sliced and "f32[2,8,8,16]" not in sliced, "not one row per device per slice"
for op in ("all-gather", "all-to-all", "collective-permute", "all-reduce"):
    assert op not in sliced, f"{op} in the sliced loop: rows cross devices"
x1 = jax.device_put(np.random.default_rng(0).standard_normal((8, 8, 8, 1)).astype(np.float32), rows(mesh))
np.testing.assert_allclose(np.asarray(sampling.sample(fn, x1, forward_rows=8, **kw)),
                           np.asarray(sampling.sample(fn, x1, **kw)), rtol=1e-5, atol=1e-6)
np.savez(sys.argv[1], one=out[1], eight=out[8], labels=labels)
print("MESH-OK")
"""


@pytest.mark.slow
def test_eight_devices_sample_the_images_and_metrics_of_one(tmp_path, digits_extractor):
    from ladder_evaluator.metrics import digits_classifier, fid
    from ladder_trainer.data import digits

    result = tmp_path / "images.npz"
    env = trainer_env("--xla_force_host_platform_device_count=8")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(result)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    got = np.load(result)
    one, eight = got["one"], got["eight"]
    assert one.shape == eight.shape == (12, 8, 8, 1)
    np.testing.assert_allclose(eight, one, rtol=1e-4, atol=1e-5)
    assert not np.allclose(one[:4], one[8:])  # each batch has its own noise
    ref = fid.reference_from_images(digits.load("test").images[:200], digits_extractor)
    fids = [fid.fid(images, ref, digits_extractor) for images in (one, eight)]
    assert fids[1] == pytest.approx(fids[0], rel=1e-4)
    hits = [digits_classifier.adherence(images, got["labels"], digits_extractor) for images in (one, eight)]
    assert hits[0] == hits[1]


def test_a_batch_is_split_over_the_most_devices_that_divide_it():
    assert usable_devices(64, 8) == 8
    assert usable_devices(6, 8) == 6 and usable_devices(12, 8) == 6 and usable_devices(7, 4) == 1
    assert data_mesh(batch_size=5).devices.size == 1  # this process has one device


def test_the_next_batch_is_dispatched_before_the_previous_one_is_handed_over(monkeypatch):
    """One batch in flight: while the caller scores batch b on the host, batch b+1 is already
    queued on the devices (the real dispatch and copy are exercised by the 8-device test)."""
    from ladder_evaluator import evaluate

    events = []

    def fake_dispatch(run, apply, params, point, prompts, ac, mesh, seed_index=0):
        for b in range(3):
            events.append(f"dispatch {b}")
            yield b

    monkeypatch.setattr(evaluate, "dispatch", fake_dispatch)
    monkeypatch.setattr(evaluate, "arrived", lambda run, b: (events.append(f"arrive {b}"), b)[1])
    for b in evaluate.generate(None, None, None, None, None, None, mesh=object(), decode=object()):
        events.append(f"score {b}")
    assert events == ["dispatch 0", "dispatch 1", "arrive 0", "score 0", "dispatch 2", "arrive 1",
                      "score 1", "arrive 2", "score 2"]
