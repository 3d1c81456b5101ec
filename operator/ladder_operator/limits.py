"""The objects an experiment becomes, measured against what the API server takes.

The spec's caps (ladder_api.limits) are chosen so that every valid spec fits; this renders the
run ConfigMap and measures it, so that `ladder validate` states how close a spec is and refuses
one that does not fit, whatever the caps become.
"""

from __future__ import annotations

from ladder_api.limits import CONFIG_MAP_LIMIT
from ladder_api.plan import Plan
from ladder_operator.render import run_config_map


def config_map_bytes(plan: Plan) -> int:
    """Bytes of the run ConfigMap's data (keys and values), what the 1 MiB limit counts."""
    data = run_config_map(plan)["data"]
    return sum(len(k.encode()) + len(v.encode()) for k, v in data.items())


def object_problems(plan: Plan) -> list[str]:
    """One line per object that would not fit, naming the fields that make it large."""
    size = config_map_bytes(plan)
    if size <= CONFIG_MAP_LIMIT:
        return []
    per_run = size // max(1, len(plan.runs))
    return [
        f"ladder.widths: {len(plan.runs)} widths render a ConfigMap of run configs of {size:,} bytes "
        f"(about {per_run:,} per width), more than the {CONFIG_MAP_LIMIT:,} a ConfigMap holds; use "
        "fewer widths or shorter URIs (every URI of the spec is in each run config)"
    ]
