"""The training noise schedule as the samplers need it: alphas_cumprod (alpha-bar_t).

One source of truth: the trainer's `ladder_trainer.diffusion` defines the schedule the model was
trained with; the evaluator only reads it from the same RunConfig field
(run.training.noiseSchedule), so sampling can never use a different schedule than training.
"""

from __future__ import annotations

import numpy as np

from ladder_api.spec import NoiseScheduleSpec
from ladder_trainer.diffusion import alphas_cumprod as _trainer_alphas_cumprod


def alphas_cumprod(spec: NoiseScheduleSpec | None = None) -> np.ndarray:
    """alpha-bar_t for t = 0..T-1 (float64); SD v1.5's scaled_linear schedule by default."""
    return np.asarray(_trainer_alphas_cumprod(spec or NoiseScheduleSpec()), dtype=np.float64)
