"""hack/tpu-smoke.sh: the objects it applies are valid, and their pods are the training pods'
(same lockdown, node selection, requests and /dev/shm), so the smoke test checks what runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ladder_api.tpu import SLICES
from ladder_operator.render import training_jobset
from ladder_operator.smoke import smoke_objects
from tests.conftest import REPO_ROOT, validate_manifest

from .test_render import plan_of, pod_spec


@pytest.mark.parametrize("slice_name", sorted(SLICES))
@pytest.mark.parametrize("host_network", [False, True])
def test_smoke_objects_validate_and_match_the_training_pod(slice_name, host_network):
    service, job = smoke_objects(slice_name, "trainer:1", "research", host_network=host_network)
    validate_manifest(service)
    validate_manifest(job)
    st = SLICES[slice_name]
    assert job["spec"]["parallelism"] == job["spec"]["completions"] == st.hosts
    pod = job["spec"]["template"]["spec"]
    plan = plan_of(ladder={"widths": [64]},
                   resources={"slices": [{"sliceType": slice_name}], "hostNetwork": host_network})
    train = pod_spec(training_jobset(plan, 64))
    for key in ("nodeSelector", "tolerations", "securityContext", "hostNetwork", "dnsPolicy"):
        assert pod.get(key) == train.get(key), key
    (c,), (t,) = pod["containers"], train["containers"]
    for key in ("securityContext", "resources", "ports"):
        assert c[key] == t[key], key
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/tmp", "/dev/shm"}
    assert c["command"][:5] == ["python", "-m", "ladder_trainer.smoke", "--chips", str(st.chips_per_host)]
    assert ("--peer" in c["command"]) == (st.hosts > 1)  # the DCN check needs a second host
    assert pod["subdomain"] == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == job["spec"]["template"]["metadata"]["labels"]


def test_smoke_script_refuses_to_run_without_a_cluster():
    out = subprocess.run(["bash", str(REPO_ROOT / "hack" / "tpu-smoke.sh")], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode != 0 and "LADDER_TEST_KUBECONFIG" in out.stderr


FAKE_KUBECTL = r"""#!/bin/bash
# Stand-in for kubectl (no cluster runs here): records the call, answers as a cluster would.
echo "$*" >> "$CALLS"
case "$*" in
  *" logs "*) cat "$LOGS";;
  *"spec.nodeName"*) echo node-a;;
  *"status.allocatable"*) echo '{"cpu": "111", "memory": "180Gi"}';;
  *"resources.requests"*) echo '{"cpu": "110", "memory": "171Gi"}';;
esac
"""


@pytest.mark.parametrize("devices_ok,gbps,want", [(True, 35.5, 0), (False, 35.5, 1), (True, 2.0, 1)])
def test_smoke_script_flow_with_a_stand_in_kubectl(tmp_path, devices_ok, gbps, want):
    """The script's own logic (apply, wait, collect the pods' JSON lines, judge them, clean up)
    against a stand-in kubectl: the real one needs a cluster with TPUs."""
    import json

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(FAKE_KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    logs = tmp_path / "logs"
    lines = [{"check": "identity", "ok": True}, {"check": "devices", "ok": devices_ok},
             {"check": "memlock", "ok": True}, {"check": "dcn", "ok": True, "gbit_per_s": gbps}]
    logs.write_text("".join(f"[pod/smoke-0/smoke] {json.dumps(x)}\n" for x in lines))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(tmp_path / "calls"),
           "LOGS": str(logs), "LADDER_TEST_KUBECONFIG": "/dev/null", "LADDER_SMOKE_IMAGE": "trainer:1",
           "PYTHON": sys.executable}
    out = subprocess.run(["bash", str(REPO_ROOT / "hack" / "tpu-smoke.sh"), "v5litepod-8"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == want, out.stdout + out.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0].startswith("apply -f ") and any("wait --for=condition=complete" in c for c in calls)
    assert calls[-1].startswith("-n default delete job,service -l ladder.dev/smoke=ladder-tpu-smoke")
    assert '"allocatable"' in out.stdout
