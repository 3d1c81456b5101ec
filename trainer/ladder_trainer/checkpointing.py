"""Checkpoints: orbax CheckpointManager on a local path or gs://, and safe resumption.

Layout under run.paths.checkpoints (one orbax step directory per saved step):
  <step>/params       the raw parameters (StandardSave pytree)
  <step>/ema_params   the EMA parameters (the ones evaluated when ema.evaluateEma)
  <step>/opt_state    the optax state
  <step>/meta         JSON: step, data position, width, params, model config, recipe hash

Items are separate so the evaluator restores only the weights it needs. orbax writes a step into
a temporary directory and finalises it atomically (a commit marker on GCS), so a save cut short by
preemption is never listed. A step that is listed but cannot be read (truncated or deleted files)
is reported and the previous one used; if none can be read, resumption fails loudly rather than
silently starting from scratch. A transient storage error (ladder_api.failures) is neither: it
propagates, so the pod restarts and reads the same step again. A checkpoint of another model is
refused before any compute.

Arrays are always restored onto the reader's own devices, never the writer's: a target carries a
sharding on the reader's mesh (the trainer's, which may differ from the one that saved: sharding
is not part of the recipe) or, for the evaluator, this process's first device. orbax reshards
whatever layout the checkpoint was written in, so a step saved by a 64-chip slice restores on the
evaluator's single chip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import orbax.checkpoint as ocp

from ladder_api import failures
from ladder_api.errors import UserError
from ladder_api.storage import as_epath as _path

log = logging.getLogger(__name__)

ARRAY_ITEMS = ("params", "ema_params", "opt_state")
ITEMS = (*ARRAY_ITEMS, "meta")
MODEL_KEYS = (
    "base_channels", "context_dim", "channel_mult", "num_res_blocks", "attention_levels",
    "num_heads", "transformer_depth", "norm_groups", "latent_channels",
)


def manager(uri: str, *, interval_steps: int = 1, keep: int | None = None, async_save: bool = True,
            read_only: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        save_interval_steps=interval_steps,
        enable_async_checkpointing=async_save,
        create=not read_only,
        read_only=read_only,
    )
    # Handlers (not just names) so a read-only manager can read a step's array metadata.
    handlers = {k: ocp.StandardCheckpointHandler() for k in ARRAY_ITEMS}
    handlers["meta"] = ocp.JsonCheckpointHandler()
    return ocp.CheckpointManager(_path(uri), options=options, item_handlers=handlers)


def placed(tree, sharding):
    """Restore targets: the shapes and dtypes of tree (arrays, ShapeDtypeStructs or orbax array
    metadata) with sharding, one Sharding for every leaf or a tree of them shaped like tree."""
    def leaf(a, s):
        return jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s)

    if isinstance(sharding, jax.sharding.Sharding):
        return jax.tree_util.tree_map(lambda a: leaf(a, sharding), tree)
    return jax.tree_util.tree_map(leaf, tree, sharding)


def model_signature(model_config) -> dict:
    """What must match for a checkpoint to fit a model (everything that fixes the param tree)."""
    d = model_config if isinstance(model_config, dict) else model_config.model_dump()
    return {k: d[k] for k in MODEL_KEYS}


def save(mngr: ocp.CheckpointManager, step: int, state, meta: dict, force: bool = False) -> bool:
    """Queue an (async) save of a TrainState; returns whether orbax saved at this step.

    A step that already exists is not written again (orbax would raise StepAlreadyExistsError):
    a stop can land on the step just saved or just restored, and after falling back from an
    unreadable newest step, training reaches that step again."""
    if step in mngr.all_steps():
        return False
    return mngr.save(
        step,
        args=ocp.args.Composite(
            params=ocp.args.StandardSave(state.params),
            ema_params=ocp.args.StandardSave(state.ema_params),
            opt_state=ocp.args.StandardSave(state.opt_state),
            meta=ocp.args.JsonSave({**meta, "step": int(step)}),
        ),
        force=force,
    )


def list_steps(uri: str) -> list[int]:
    """Finalised checkpoint steps at uri, oldest first (empty if the directory does not exist)."""
    if not _path(uri).exists():
        return []
    return sorted(manager(uri, read_only=True).all_steps())


def check_compatible(meta: dict, model_config, uri: str) -> None:
    """A checkpoint of another model size (or layout) is a user error, raised before compute."""
    want = model_signature(model_config)
    have = meta.get("model") or {}
    diff = {k: (have.get(k), want[k]) for k in want if have.get(k) != want[k]}
    if diff:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs run {b!r}" for k, (a, b) in diff.items())
        raise UserError(
            f"checkpoint {uri} step {meta.get('step')} holds another model ({detail}); point "
            "run.paths.checkpoints at this size's own directory, or delete it to start over"
        )


@dataclass
class Restored:
    step: int
    meta: dict
    items: dict[str, Any]
    skipped: list[tuple[int, str]]  # (step, why) of newer checkpoints that could not be read


def restore_latest(
    mngr: ocp.CheckpointManager,
    targets: dict[str, Any] | Callable[[int], dict[str, Any]],
    validate_meta: Callable[[dict], None] | None = None,
    uri: str = "",
) -> Restored | None:
    """Restore the newest readable step; None only when there is no checkpoint at all.

    targets maps item name -> abstract pytree (jax.ShapeDtypeStruct leaves, with shardings; see
    ``placed``), or is a function of the step giving that mapping. validate_meta runs on each
    step's metadata before arrays are read; a UserError it raises
    (e.g. another model size) propagates rather than falling back.
    """
    steps = sorted(mngr.all_steps(), reverse=True)
    if not steps:
        return None
    skipped: list[tuple[int, str]] = []
    for step in steps:
        try:
            meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        except Exception as err:  # noqa: BLE001 - any read failure means this step is unusable
            _raise_if_transient(err)
            skipped.append((step, f"metadata unreadable: {err.__class__.__name__}: {err}"))
            log.warning("checkpoint %s step %d: metadata unreadable (%s); trying the previous one",
                        uri, step, err)
            continue
        if validate_meta is not None:
            validate_meta(meta)
        try:
            items = _restore_arrays(mngr, step, targets(step) if callable(targets) else targets)
            # Force the reads now, so a truncated array is found here and not mid-training.
            jax.block_until_ready(items)
        except Exception as err:  # noqa: BLE001
            _raise_if_transient(err)
            skipped.append((step, f"{err.__class__.__name__}: {err}"))
            log.warning("checkpoint %s step %d is corrupt or partial (%s); trying the previous one",
                        uri, step, str(err)[:500])
            continue
        return Restored(step=step, meta=meta, items=items, skipped=skipped)
    raise UserError(
        f"no readable checkpoint in {uri} (steps {steps} all failed: "
        + "; ".join(f"{s}: {why[:200]}" for s, why in skipped)
        + "). Refusing to start from scratch over them: move or delete the directory to retrain."
    )


def _raise_if_transient(err: Exception) -> None:
    """A transient storage error is not a corrupt step: falling back to an older step (or failing
    as if none were readable) would lose progress. It propagates, and the pod exits for a restart."""
    if failures.classify(err).kind == "infrastructure fault":
        raise err


def _restore_arrays(mngr: ocp.CheckpointManager, step: int, targets: dict[str, Any]) -> dict[str, Any]:
    args = {k: ocp.args.StandardRestore(v) for k, v in targets.items()}
    out = mngr.restore(step, args=ocp.args.Composite(**args))
    return {k: out[k] for k in targets}


# --- the evaluator's entry points --------------------------------------------------------------


def restore_params(uri: str, step: int | None = None, ema: bool = True, model_config=None, sharding=None,
                   compute_dtype: str | None = None):
    """(params, step) of the given step, or of the newest readable one when step is None.

    ema=True gives the EMA weights (what run.training.ema.evaluateEma asks for). With model_config
    the checkpoint is checked to hold that model first and arrays are restored to its shapes
    (otherwise to the shapes the checkpoint records). Arrays land on sharding (default: this
    process's first device), whichever mesh wrote them. With compute_dtype (and model_config) the
    convolution and dense weights arrive in that dtype, cast while reading (models.held_dtypes):
    the U-Net casts them so anyway, and a bfloat16 evaluation of the 5B model then holds 9 GiB
    of weights per chip instead of 18.
    """
    if not _path(uri).exists():
        raise UserError(f"checkpoint directory {uri} does not exist")
    mngr = manager(uri, read_only=True)
    item = "ema_params" if ema else "params"
    place = sharding if sharding is not None else jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def targets(s: int) -> dict[str, Any]:
        if model_config is not None:
            from ladder_trainer.models import abstract_params, held_dtypes

            abstract = abstract_params(model_config)
            if compute_dtype is not None:
                abstract = held_dtypes(abstract, compute_dtype)
            return {item: placed(abstract, place)}
        return {item: placed(mngr.item_metadata(s)[item], place)}

    def validate(meta):
        if model_config is not None:
            check_compatible(meta, model_config, uri)

    if step is None:
        restored = restore_latest(mngr, targets, validate, uri)
        if restored is None:
            raise UserError(f"no checkpoint in {uri}")
        return restored.items[item], restored.step
    if step not in mngr.all_steps():
        raise UserError(f"checkpoint step {step} not in {uri}; available: {sorted(mngr.all_steps())}")
    validate(mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
    return _restore_arrays(mngr, step, targets(step))[item], step
