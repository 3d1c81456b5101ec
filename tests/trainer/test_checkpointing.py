"""Checkpoints: newest readable wins, corrupt ones are reported and skipped, nothing is silently
reinitialised, and a checkpoint of another model is refused before compute."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladder_api.errors import UserError
from ladder_trainer import checkpointing
from ladder_trainer.data import digits
from ladder_trainer.main import train
from ladder_trainer.train_step import abstract_state, init_state

from .conftest import make_run

_BASE = {}


def _state(run, bump=0.0):
    """A real initial state (built once per model), with params shifted by `bump`."""
    key = run.width
    if key not in _BASE:
        _BASE[key] = init_state(run, 0, digits.null_context(run.model.context_dim, run.model.context_tokens))
    state = _BASE[key]
    return state.replace(params=jax.tree_util.tree_map(lambda p: p + bump, state.params))


def _save_steps(run, steps):
    mngr = checkpointing.manager(run.paths.checkpoints, keep=5)
    for s in steps:
        meta = {"model": checkpointing.model_signature(run.model), "data_position": s, "width": run.width}
        checkpointing.save(mngr, s, _state(run, bump=float(s)), meta, force=True)
    mngr.wait_until_finished()
    return mngr


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Checkpoints as the trainer writes them, saved once for the module (each orbax save costs
    seconds): {steps: folder} for steps (2,) and (2, 4). Tests work on copies (`_checkpoints`)."""
    root = tmp_path_factory.mktemp("saved")
    run = make_run(root)
    ckpt = root / "tiny" / "c16" / "checkpoints"
    _save_steps(run, [2])
    shutil.copytree(ckpt, root / "steps-2")
    _save_steps(run, [4])
    return {(2,): root / "steps-2", (2, 4): ckpt}


def _checkpoints(saved, tmp_path, steps):
    """The tiny run at tmp_path with the module's checkpoints of `steps` copied into its folder."""
    run = make_run(tmp_path)
    ckpt = tmp_path / "tiny" / "c16" / "checkpoints"
    shutil.copytree(saved[tuple(steps)], ckpt)
    return run, ckpt


def _targets(run):
    a = abstract_state(run, (run.model.context_tokens, run.model.context_dim))
    return {k: getattr(a, k) for k in checkpointing.ARRAY_ITEMS}


def test_corrupt_newest_falls_back_to_previous(saved, tmp_path):
    run, ckpt = _checkpoints(saved, tmp_path, [2, 4])
    for f in (ckpt / "4" / "params").rglob("*"):
        if f.is_file() and "ocdbt" not in f.name and f.stat().st_size > 0:
            f.write_bytes(b"garbage")
    shutil.rmtree(ckpt / "4" / "params" / "d", ignore_errors=True)
    mngr = checkpointing.manager(run.paths.checkpoints)
    restored = checkpointing.restore_latest(mngr, _targets(run), uri=run.paths.checkpoints)
    assert restored.step == 2
    assert [s for s, _ in restored.skipped] == [4]
    leaf = jax.tree_util.tree_leaves(restored.items["params"])[0]
    ref = jax.tree_util.tree_leaves(_state(run, bump=2.0).params)[0]
    np.testing.assert_array_equal(np.asarray(leaf), np.asarray(ref))


def test_no_readable_checkpoint_is_an_error_not_a_fresh_start(saved, tmp_path):
    run, ckpt = _checkpoints(saved, tmp_path, [2])
    shutil.rmtree(ckpt / "2" / "params")
    shutil.rmtree(ckpt / "2" / "meta")
    mngr = checkpointing.manager(run.paths.checkpoints)
    with pytest.raises(UserError, match="Refusing to start from scratch"):
        checkpointing.restore_latest(mngr, _targets(run), uri=run.paths.checkpoints)


def test_a_step_already_saved_is_not_saved_again(saved, tmp_path):
    run, _ = _checkpoints(saved, tmp_path, [2])
    mngr = checkpointing.manager(run.paths.checkpoints, keep=5)  # as a restarted trainer's
    meta = {"model": checkpointing.model_signature(run.model), "data_position": 2}
    assert checkpointing.save(mngr, 2, _state(run, bump=9.0), meta, force=True) is False
    mngr.wait_until_finished()
    restored = checkpointing.restore_latest(mngr, _targets(run), uri=run.paths.checkpoints)
    ref = jax.tree_util.tree_leaves(_state(run, bump=2.0).params)[0]
    np.testing.assert_array_equal(np.asarray(jax.tree_util.tree_leaves(restored.items["params"])[0]), ref)


def test_unfinished_save_is_not_listed(saved, tmp_path):
    run, ckpt = _checkpoints(saved, tmp_path, [2])
    (ckpt / "4.orbax-checkpoint-tmp-123").mkdir()
    assert checkpointing.list_steps(run.paths.checkpoints) == [2]


def test_checkpoint_of_another_size_is_refused_before_compute(saved, tmp_path):
    small, _ = _checkpoints(saved, tmp_path, [2])
    big = make_run(tmp_path, ladder={"widths": [32]})
    big = big.model_copy(update={"paths": small.paths})
    with pytest.raises(UserError, match="base_channels: checkpoint 16 vs run 32"):
        train(big, status="off")


def test_evaluator_restore_of_ema_and_raw_params(saved, tmp_path):
    run, _ = _checkpoints(saved, tmp_path, [2, 4])
    ema, step = checkpointing.restore_params(run.paths.checkpoints, model_config=run.model)
    assert step == 4
    raw, _ = checkpointing.restore_params(run.paths.checkpoints, step=2, ema=False)
    # EMA was saved from the un-bumped state, raw params from the bumped one.
    e = jax.tree_util.tree_leaves(ema)[0]
    r = jax.tree_util.tree_leaves(raw)[0]
    assert not np.allclose(np.asarray(e), np.asarray(r))
    assert checkpointing.list_steps(run.paths.checkpoints) == [2, 4]
    with pytest.raises(UserError, match="step 3 not in"):
        checkpointing.restore_params(run.paths.checkpoints, step=3)
    with pytest.raises(UserError, match="does not exist"):
        checkpointing.restore_params(str(tmp_path / "nowhere"))
    assert isinstance(jnp.asarray(e), jax.Array)


def test_evaluator_restore_in_the_compute_dtype_holds_half_the_bytes_and_samples_the_same(tmp_path):
    """Weights cast while reading (what a bf16 evaluation of the 5B model needs to fit a 16 GiB
    chip): the conv and dense weights arrive in bfloat16, the norms' stay float32, and the U-Net
    computing in bfloat16 gives bit-identical outputs from either tree."""
    from ladder_trainer.models import build_unet, dummy_inputs

    run = make_run(tmp_path)
    _save_steps(run, [2])
    full, _ = checkpointing.restore_params(run.paths.checkpoints, model_config=run.model)
    held, _ = checkpointing.restore_params(run.paths.checkpoints, model_config=run.model,
                                           compute_dtype="bfloat16")
    dtypes = {jax.tree_util.keystr(p): leaf.dtype for p, leaf in jax.tree_util.tree_leaves_with_path(held)}
    assert dtypes["['conv_in']['kernel']"] == jnp.bfloat16
    assert dtypes["['down_0_res_0']['norm1']['scale']"] == jnp.float32
    size = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(held))
    assert size < 0.6 * sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(full))
    unet = build_unet(run.model, "bfloat16")
    rng = np.random.default_rng(0)
    x, t, ctx = (rng.standard_normal(a.shape).astype(np.float32) for a in dummy_inputs(run.model, batch=2))
    apply = jax.jit(lambda p: unet.apply({"params": p}, x, t * 500 + 500, ctx))
    np.testing.assert_array_equal(np.asarray(apply(held)), np.asarray(apply(full)))
