"""Resume and skip decisions: what each size still needs, from what is already on disk.

Pure functions of the run's config, the checkpoint steps found and the result ids recorded, so
"nothing done is lost, nothing is done twice" is a tested property rather than a hope: a size
whose final checkpoint exists is not trained again, and an evaluation whose every expected
measurement is recorded is not started again (the evaluator also skips recorded ids itself).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ladder_api.errors import UserError
from ladder_api.grid import expected_ids
from ladder_api.plan import RunConfig
from ladder_api.recipe import recipe_diff, recipe_from_config


@dataclass(frozen=True)
class SizeDecision:
    width: int
    train: bool
    evaluate: bool
    reason: str
    resume_step: int | None = None
    expected: int = 0
    recorded: int = 0


def decide(
    run: RunConfig,
    checkpoint_steps: Collection[int],
    recorded_ids: Collection[str],
    *,
    force_eval: bool = False,
) -> SizeDecision:
    final = run.training.steps
    done_steps = [s for s in checkpoint_steps if s <= final]
    newest = max(done_steps) if done_steps else None
    if newest is None or newest < final:
        # Until training is done, the "all" selection's count is only an estimate.
        expected = expected_ids(run, done_steps)
        reason = f"resume training from step {newest}" if newest is not None else "train from scratch"
        return SizeDecision(
            run.width, True, True, reason, newest, len(expected), len(expected & set(recorded_ids))
        )
    expected = expected_ids(run, done_steps)
    have = expected & set(recorded_ids)
    missing = len(expected) - len(have)
    if force_eval:
        return SizeDecision(run.width, False, True, "re-evaluate (forced)", newest, len(expected), len(have))
    if missing:
        reason = f"trained; evaluate {missing} of {len(expected)} measurements"
        return SizeDecision(run.width, False, True, reason, newest, len(expected), len(have))
    return SizeDecision(
        run.width, False, False, f"done: {len(have)} measurements recorded", newest, len(expected), len(have)
    )


def check_same_recipe(previous: dict | None, run: RunConfig, has_checkpoints: bool, root: str) -> None:
    """Refuse to resume a size whose checkpoints were trained under another recipe: they would be
    silently mixed with the new settings. The rule is ladder_api.recipe's, the operator's too:
    evaluation, sharding and checkpoint-cadence edits are fine (recorded measurements are kept).
    `previous` is the size's earlier RunConfig as JSON, whichever Ladder version wrote it."""
    if previous is None or not has_checkpoints:
        return
    changed = recipe_diff(recipe_from_config(previous), run.recipe())
    if not changed:
        return
    raise UserError(
        f"size c{run.width} in {root} was trained with a different recipe: {'; '.join(changed)}. "
        "These fields fix what a started size means: revert them, run into another directory "
        f"with `-o DIR`, or delete {root} to retrain it."
    )
