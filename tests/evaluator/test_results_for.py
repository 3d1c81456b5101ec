"""What the evaluator records for one grid point: a value per metric, or, for a metric that came
out NaN or infinite, a failed measurement with its reason (never a number JSON cannot hold)."""

from __future__ import annotations

import json
import math

from ladder_api.grid import GridPoint
from ladder_api.plan import expand
from ladder_api.spec import SamplerName
from ladder_evaluator.evaluate import results_for
from tests.local.conftest import tiny_experiment


def test_a_non_finite_metric_is_a_failed_measurement(caplog):
    """A NaN FID (its bootstrap NaN too) is a failed measurement without uncertainty; a finite
    value whose replicates are not keeps the value and drops the uncertainty."""
    run = expand(tiny_experiment(), root="/out").runs[0]
    point = GridPoint(SamplerName.ddim, 2, 3.0)
    nan_fid = {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "stderr": math.nan,
               "confidence": 0.95, "replicates": [math.nan, 1.0]}
    adherence = {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "stderr": 0.05, "confidence": 0.95,
                 "replicates": [0.45, 0.55]}
    fid, ok = results_for(run, 6, point, {"fid-digits-classifier": nan_fid, "adherence": adherence})
    assert fid.failed and fid.value is None and fid.error == "the metric came out nan, not a finite number"
    assert fid.ci_low is None and fid.replicates is None and fid.stderr is None
    assert not ok.failed and ok.value == 0.5 and ok.replicates == [0.45, 0.55]
    assert fid.id == "c8-s6-ddim-n2-g3-fid-digits-classifier" and fid.sampling_cost > 0
    json.dumps(fid.to_wire(), allow_nan=False)  # strict JSON: what the API server and GCS readers take
    assert "recorded as a failed measurement" in caplog.text
    (inf,) = results_for(run, 6, point, {"adherence": {"value": math.inf}})
    assert inf.failed and "inf" in inf.error
    (shaky,) = results_for(run, 6, point, {"adherence": {**adherence, "replicates": [0.5, math.inf]}})
    assert not shaky.failed and shaky.value == 0.5 and shaky.replicates is None and shaky.ci_low is None
