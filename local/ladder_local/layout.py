"""Where `ladder run` puts an experiment. Pure: paths only, nothing is created here.

Two places, often the same directory: the outputs (each size's checkpoints, metrics, results and
samples, laid out by ladder_api.artifacts under the root ladder_api.plan.expand is given) and the
runner's own state, always on this machine (the lock, status.json, configs/, each size's logs/
and the JAX compilation cache). When the outputs go to gs://, the state stays in
./ladder-runs/<name>.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ladder_api import storage
from ladder_api.errors import UserError
from ladder_api.spec import ScalingExperiment

LOCK_FILE = ".ladder-run.lock"
JAX_CACHE_DIR = ".jax-cache"
DEFAULT_PARENT = "ladder-runs"


@dataclass(frozen=True)
class RunLocation:
    outputs: str  # the experiment's root: a local path (absolute) or a gs:// URI
    state_dir: Path  # the runner's own files, on this machine
    chosen_by: str  # the setting that chose `outputs`, for `ladder run`'s first lines
    ignored: str | None = None  # an explicit storage.outputUri that a higher setting overrode

    @property
    def remote(self) -> bool:
        return storage.is_remote(self.outputs)


def _output_uri_set(exp: ScalingExperiment) -> bool:
    """Whether the spec names storage.outputUri itself (its default is the cluster's bucket)."""
    spec = exp.spec
    return "storage" in spec.model_fields_set and "output_uri" in spec.storage.model_fields_set


def run_location(
    exp: ScalingExperiment, override: str | None = None, cwd: Path | None = None
) -> RunLocation:
    """`-o DIR` wins, then spec.local.outputDir, then spec.storage.outputUri (<uri>/<name>) when
    the spec sets it, then ./ladder-runs/<name>."""
    base = Path(cwd or Path.cwd())
    default_state = base / DEFAULT_PARENT / exp.metadata.name
    explicit_uri = exp.spec.storage.output_uri if _output_uri_set(exp) else None
    if override is not None:
        chosen, by = override, "-o"
    elif exp.spec.local.output_dir:
        chosen, by = exp.spec.local.output_dir, "spec.local.outputDir"
    elif explicit_uri:
        chosen, by = storage.join(explicit_uri, exp.metadata.name), "spec.storage.outputUri"
        explicit_uri = None
    else:
        chosen, by = str(default_state), f"default ./{DEFAULT_PARENT}/<name>"
    if storage.is_remote(chosen):
        return RunLocation(chosen.rstrip("/"), default_state, by, explicit_uri)
    path = storage.local_path(chosen)
    path = path if path.is_absolute() else base / path
    return RunLocation(str(path), path, by, explicit_uri)


def read_previous_config(path: str) -> dict | None:
    """The RunConfig an earlier `ladder run` wrote here (as JSON: any Ladder version), or None."""
    try:
        data = json.loads(storage.read_text(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise UserError(
            f"{path}: cannot read the earlier run's config ({err.__class__.__name__}); restore it, or "
            f"delete {Path(path).parent.parent} to start the experiment over"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a run config (a JSON object); delete it to start this size over")
    return data
