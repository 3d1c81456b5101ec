"""Pure pieces: learning-rate schedule, status patch body, MFU."""

import pytest

from ladder_trainer.metrics import mfu
from ladder_trainer.optim import lr_schedule
from ladder_trainer.status_report import ClusterReporter, field_manager, size_status_patch

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


def test_status_patch_body_is_a_list_map_entry():
    body = size_status_patch("exp", "ns", 128, step=200, total_steps=600, loss=0.25,
                             checkpoint_step=200, checkpoint_uri="gs://b/exp/c128/checkpoints/200")
    assert body == {
        "apiVersion": "ladder.dev/v1alpha1",
        "kind": "ScalingExperiment",
        "metadata": {"name": "exp", "namespace": "ns"},
        "status": {"sizes": [{"width": 128, "step": 200, "totalSteps": 600, "loss": 0.25,
                              "checkpointStep": 200, "checkpointUri": "gs://b/exp/c128/checkpoints/200"}]},
    }
    entry = size_status_patch("e", "n", 64, step=1, total_steps=2)["status"]["sizes"][0]
    assert "checkpointStep" not in entry
    assert field_manager(64) == "ladder-trainer-c64"


def test_reporter_applies_with_its_own_field_manager_and_survives_failures():
    calls = []

    class FakeApi:
        def patch_namespaced_custom_object_status(self, *args, **kwargs):
            calls.append((args, kwargs))
            if len(calls) > 1:
                raise RuntimeError("apiserver down")

    r = ClusterReporter("exp", "ns", 96, api=FakeApi())
    assert r.report(step=1, total_steps=10, loss=1.0)
    args, kwargs = calls[0]
    assert args == ("ladder.dev", "v1alpha1", "ns", "scalingexperiments", "exp")
    assert kwargs["field_manager"] == "ladder-trainer-c96" and kwargs["force"] is True
    assert kwargs["_content_type"] == "application/apply-patch+yaml"
    assert not r.report(step=2, total_steps=10)


def test_mfu_is_model_flops_over_peak():
    # 3 x 1 GFLOP per example, 100 examples/s = 300 GFLOP/s against a 1 TFLOP/s peak.
    assert mfu(100.0, 1.0, 1e12) == pytest.approx(0.3)
