"""The analytic memory plan (ladder_api.memory) and `ladder sizes`."""

import json

import numpy as np
import pytest

from ladder_api.ladder import UNetShape
from ladder_api.memory import memory_problems, plan_for, plan_memory, smallest_fitting_slice
from ladder_api.spec import ScalingExperimentSpec
from ladder_cli.main import main as ladder


def test_plan_parts_scale_with_params_and_sharding():
    shape = UNetShape(base_channels=320)
    one = plan_memory(shape, latent_size=64, context_tokens=77, per_chip_batch=8, remat=False)
    four = plan_memory(shape, latent_size=64, context_tokens=77, per_chip_batch=8, fsdp=4, remat=False)
    assert one.params_bytes == 4 * one.params == 4 * four.params_bytes
    assert one.optimizer_bytes == 2 * one.params_bytes
    assert four.compute_copy_bytes == 2 * one.params  # bf16 gathered weights
    assert four.activation_bytes == one.activation_bytes
    double = plan_memory(shape, latent_size=64, context_tokens=77, per_chip_batch=16, remat=False)
    assert double.activation_bytes == pytest.approx(2 * one.activation_bytes)
    remat = plan_memory(shape, latent_size=64, context_tokens=77, per_chip_batch=8, remat=True)
    assert remat.activation_bytes < one.activation_bytes / 3


def test_memory_problems_name_size_estimate_and_a_slice_that_fits():
    spec = ScalingExperimentSpec.model_validate({"ladder": {"widths": [320]}})
    problems = memory_problems(spec)
    assert len(problems) == 1
    assert "width 320" in problems[0] and "GiB per chip on v5litepod-16" in problems[0]
    better = smallest_fitting_slice(spec, 320)
    assert better is not None and better in problems[0]
    assert plan_for(spec, 320, slice_type=better).fits
    tiny = {"widths": [32], "latentSize": 8, "channelMult": [1, 2], "contextDim": 32, "normGroups": 8,
            "numHeads": 4, "attentionLevels": [1]}
    quick = ScalingExperimentSpec.model_validate({"ladder": tiny})
    assert memory_problems(quick) == []


def test_ladder_sizes_table_and_memory(capsys):
    assert ladder(["sizes", "--json", "--slice", "v5p-32", "--global-batch", "512"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["width"] for r in doc["sizes"]][:2] == [64, 96]
    assert doc["sizes"][-1]["params"] == 4_900_198_660
    mem = {r["width"]: r for r in doc["memory"]["sizes"]}
    assert mem[64]["fits"] and mem[64]["perChipBatch"] == 32
    assert mem[768]["bytes"]["total"] > mem[64]["bytes"]["total"]
    assert ladder(["sizes", "--context-dim", "768", "--widths", "320"]) == 0
    assert "859,520,964" in capsys.readouterr().out
    assert ladder(["sizes", "--slice", "v9-1"]) == 2


@pytest.mark.slow
def test_ladder_sizes_verify_counts_the_real_module(capsys):
    assert ladder(["sizes", "--verify", "--widths", "64,320"]) == 0
    out = capsys.readouterr().out
    assert out.count(" ok") == 2 and "MISMATCH" not in out


@pytest.mark.slow
def test_plan_is_within_25_percent_of_xla_compiled_memory():
    """The plan against XLA's own accounting of the real train step (CPU, float32)."""
    import jax
    import jax.numpy as jnp

    from ladder_trainer.train_step import _train_step, abstract_state

    from .conftest import make_run

    batch = 64
    run = make_run(globalBatch=batch, computeDtype="float32")
    m = run.model
    state = abstract_state(run, (m.context_tokens, m.context_dim))
    inputs = {
        "latents": jax.ShapeDtypeStruct((batch, 8, 8, 1), jnp.float32),
        "context": jax.ShapeDtypeStruct((batch, m.context_tokens, m.context_dim), jnp.float32),
    }
    compiled = jax.jit(_train_step, donate_argnums=(0,)).lower(state, inputs, jax.random.key(0)).compile()
    ma = compiled.memory_analysis()
    xla = ma.argument_size_in_bytes + ma.output_size_in_bytes - ma.alias_size_in_bytes + ma.temp_size_in_bytes
    shape = UNetShape(base_channels=16, context_dim=m.context_dim, channel_mult=tuple(m.channel_mult),
                      num_res_blocks=m.num_res_blocks, attention_levels=tuple(m.attention_levels),
                      num_heads=m.num_heads, in_channels=1, out_channels=1, norm_groups=m.norm_groups)
    plan = plan_memory(shape, latent_size=8, context_tokens=m.context_tokens, per_chip_batch=batch,
                       compute_dtype="float32", remat=False)
    batch_bytes = sum(4 * np.prod(s.shape) for s in inputs.values())
    assert abs(plan.total_bytes + batch_bytes - xla) / xla < 0.25, (plan.total_bytes, xla)
