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
    run = expand(tiny_experiment(), root="/out").runs[0]
    fid, adherence = results_for(run, 6, GridPoint(SamplerName.ddim, 2, 3.0),
                                 {"fid-digits-classifier": math.nan, "adherence": 0.5})
    assert fid.failed and fid.value is None and fid.error == "the metric came out nan, not a finite number"
    assert not adherence.failed and adherence.value == 0.5
    assert fid.id == "c8-s6-ddim-n2-g3-fid-digits-classifier" and fid.sampling_cost > 0
    json.dumps(fid.to_wire(), allow_nan=False)  # strict JSON: what the API server and GCS readers take
    assert "recorded as a failed measurement" in caplog.text
    (inf,) = results_for(run, 6, GridPoint(SamplerName.ddim, 2, 3.0), {"adherence": math.inf})
    assert inf.failed and "inf" in inf.error
