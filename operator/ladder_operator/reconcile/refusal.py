"""Step 3: refuse spec edits that would change what a started size means.

The rule is ladder_api.recipe's, the one `ladder run` applies: the recorded recipe names each
changed field. Without it (the annotation was lost) the started JobSets' recipe hashes still
tell that something changed, after the driver chose the versioned defaults those hashes match
(driver._as_started).
"""

from __future__ import annotations

from ladder_api.plan import Plan
from ladder_api.recipe import recipe_diff
from ladder_operator.reconcile.state import OperatorState


def refused_edits(state: OperatorState, plan: Plan) -> list[str]:
    started = state.started()
    if not started:
        return []
    if state.recipe is not None:
        return recipe_diff(state.recipe, plan.runs[0].recipe())
    widths = {run.width for run in plan.runs}
    for width, recorded in started.items():
        now = plan.run(width).recipe_hash if width in widths else recorded
        if now != recorded:
            return [f"the recipe of size c{width} changed (recipe hash {recorded} -> {now})"]
    return []
