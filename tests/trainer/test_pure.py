"""Pure pieces: learning-rate schedule, status fragment, MFU."""

import pytest

from ladder_trainer.metrics import mfu
from ladder_trainer.optim import lr_schedule
from ladder_trainer.status_report import manager_base, size_status_fragment

from .conftest import make_run


@pytest.mark.parametrize("kind", ["constant", "cosine", "linear"])
def test_lr_warms_up_then_decays(kind):
    sched = {"kind": kind, "warmupSteps": 10, "endFactor": 0.1}
    t = make_run(steps=100, learningRate=1.0, lrSchedule=sched).training
    f = lr_schedule(t)
    assert float(f(0)) == pytest.approx(0.1)
    assert float(f(9)) == pytest.approx(1.0)
    assert float(f(10)) == pytest.approx(1.0)
    end = float(f(100))
    assert end == pytest.approx(1.0 if kind == "constant" else 0.1, abs=1e-6)
    if kind == "cosine":
        assert float(f(55)) == pytest.approx(0.55, abs=1e-6)
    if kind == "linear":
        assert float(f(55)) == pytest.approx(0.55, abs=1e-6)


def test_status_fragment_is_a_list_map_entry():
    fragment = size_status_fragment(128, step=200, total_steps=600, loss=0.25, checkpoint_step=200,
                                    checkpoint_uri="gs://b/exp/c128/checkpoints/200")
    assert fragment == {"sizes": [{"width": 128, "step": 200, "totalSteps": 600, "loss": 0.25,
                                   "checkpointStep": 200, "checkpointUri": "gs://b/exp/c128/checkpoints/200"}]}
    entry = size_status_fragment(64, step=1, total_steps=2)["sizes"][0]
    assert "checkpointStep" not in entry
    assert "loss" not in size_status_fragment(64, step=1, total_steps=2, loss=float("nan"))["sizes"][0]
    assert manager_base(64) == "ladder-trainer-c64"


def test_mfu_is_model_flops_over_peak():
    # 3 x 1 GFLOP per example, 100 examples/s = 300 GFLOP/s against a 1 TFLOP/s peak.
    assert mfu(100.0, 1.0, 1e12) == pytest.approx(0.3)
