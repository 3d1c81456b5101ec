"""Where things live in a local run directory. Pure: paths only, nothing is created here.

A run directory holds one experiment: `status.json` (the custom resource's status shape),
`configs/<run name>.json` (each RunConfig exactly as the subprocesses read it) and one folder per
size, `c<width>/`, with the paths RunConfig.paths names (checkpoints, metrics, results, samples)
plus `logs/` for the subprocesses' output.
"""

from __future__ import annotations

import json
from pathlib import Path

from ladder_api.errors import UserError
from ladder_api.plan import Plan, RunConfig, RunPaths
from ladder_api.spec import ScalingExperiment

STATUS_FILE = "status.json"
CONFIG_DIR = "configs"
LOCK_FILE = ".ladder-run.lock"
JAX_CACHE_DIR = ".jax-cache"
DEFAULT_PARENT = "ladder-runs"


def run_directory(
    exp: ScalingExperiment, override: str | Path | None = None, cwd: Path | None = None
) -> Path:
    """`-o DIR` wins, then spec.local.outputDir, then ./ladder-runs/<experiment name>/."""
    base = Path(cwd or Path.cwd())
    if override is not None:
        chosen = Path(override)
    elif exp.spec.local.output_dir:
        chosen = Path(exp.spec.local.output_dir)
    else:
        chosen = Path(DEFAULT_PARENT) / exp.metadata.name
    return chosen if chosen.is_absolute() else base / chosen


def size_root(out_dir: Path, width: int) -> Path:
    return out_dir / f"c{width}"


def localize(plan: Plan, out_dir: Path) -> Plan:
    """The same plan with every run's paths under `out_dir` (absolute, so the subprocesses'
    working directory does not matter). Everything else in each RunConfig is left untouched."""
    runs = []
    for run in plan.runs:
        root = size_root(out_dir, run.width)
        paths = RunPaths(
            root=str(root),
            checkpoints=str(root / "checkpoints"),
            metrics=str(root / "metrics.jsonl"),
            results=str(root / "results.json"),
            samples=str(root / "samples"),
        )
        runs.append(run.model_copy(update={"paths": paths}))
    return plan.model_copy(update={"runs": runs})


def config_path(out_dir: Path, run: RunConfig) -> Path:
    return out_dir / CONFIG_DIR / f"{run.name}.json"


def read_previous_config(path: Path) -> dict | None:
    """The RunConfig an earlier `ladder run` wrote here (as JSON: any Ladder version), or None."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise UserError(
            f"{path}: cannot read the earlier run's config ({err.__class__.__name__}); restore it, or "
            f"delete {path.parent.parent} to start the experiment over"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a run config (a JSON object); delete it to start this size over")
    return data


def log_path(run: RunConfig, task: str) -> Path:
    """One log file per task and size; appended to across resumes so nothing is lost."""
    return Path(run.paths.root) / "logs" / f"{task}.log"
