"""The real kubectl against the local API server, doing what a user does with a ScalingExperiment:
apply (client- and server-side, with schema validation), get with the CRD's printer columns,
explain, describe with events, edit, diff, dry runs, wait.

Every assertion is one a real cluster satisfies, so the module runs unchanged against one: set
LADDER_TEST_KUBECONFIG (the ladder CRD installed there, e.g. `kubectl apply -f
charts/ladder/crds/`, and no ladder operator watching the test's namespace) and the local server is
not started. kubectl is a development dependency (/usr/bin/kubectl, v1.32); each call costs about
0.2 s, so the checks share one namespace and one object where they can.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from ladder_testing.apiserver.fixture import running_apiserver
from tests.conftest import EXAMPLES

REAL_CLUSTER = os.environ.get("LADDER_TEST_KUBECONFIG")
EDITOR = """import re, sys
path = sys.argv[1]
text = open(path).read()
open(path, "w").write(re.sub(r"(?m)^(    steps: ).*$", r"\\g<1>" + {value!r}, text, count=1))
"""


class Kubectl:
    def __init__(self, kubeconfig: Path, namespace: str, cache: Path):
        binary = shutil.which("kubectl")
        if binary is None:
            pytest.fail("kubectl is not installed (a development dependency: /usr/bin/kubectl, v1.32)")
        self.binary, self.kubeconfig, self.namespace = binary, kubeconfig, namespace
        self.env = {**os.environ, "KUBECACHEDIR": str(cache)}

    def run(self, *args: str, stdin: str | None = None, check: bool = True, env: dict | None = None):
        cmd = [self.binary, "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args]
        proc = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=60, env={**self.env, **(env or {})}
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
        return proc

    def refused(self, *args: str, stdin: str | None = None) -> str:
        proc = self.run(*args, stdin=stdin, check=False)
        assert proc.returncode != 0, f"{' '.join(args)} was accepted: {proc.stdout}"
        return proc.stderr

    def obj(self, name: str) -> dict:
        return json.loads(self.run("get", "sx", name, "-o", "json").stdout)


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kubectl")
    namespace = f"conformance-{uuid.uuid4().hex[:6]}"
    if REAL_CLUSTER:
        kc = Kubectl(Path(REAL_CLUSTER), namespace, tmp / "cache")
        if kc.run("get", "crd", "scalingexperiments.ladder.dev", check=False).returncode != 0:
            pytest.fail(
                "the ladder CRD is not installed in LADDER_TEST_KUBECONFIG's cluster: "
                "kubectl apply -f charts/ladder/crds/"
            )
        yield from _in_namespace(kc)
        return
    with running_apiserver(tmp / "apiserver") as api:
        yield from _in_namespace(Kubectl(api.kubeconfig, namespace, tmp / "cache"))


def _in_namespace(kc: Kubectl):
    kc.run("create", "namespace", kc.namespace)  # a typed command: the body is protobuf
    try:
        yield kc
    finally:
        kc.run("delete", "namespace", kc.namespace, "--wait=false", check=False)


def experiment(name: str, ladder: dict | None = None, **training) -> str:
    """The quickstart example as a manifest named `name`, with ladder and training fields replaced."""
    doc = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    doc["metadata"] = {"name": name}
    doc["spec"]["ladder"].update(ladder or {})
    doc["spec"]["training"].update(training)
    return yaml.safe_dump(doc)


def test_client_side_apply_validates_with_the_schema_and_get_prints_the_columns(kubectl):
    assert "created" in kubectl.run("apply", "-f", "-", stdin=experiment("cols")).stdout
    assert "unchanged" in kubectl.run("apply", "-f", "-", stdin=experiment("cols")).stdout
    kubectl.run(
        "patch", "sx", "cols", "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"phase": "Running", "summary": {"progress": "1/3", "bestFid": 12.5,
                                                                     "measured": "7/9"}}}),
    )  # fmt: skip
    header, row = kubectl.run("get", "sx", "cols").stdout.splitlines()
    assert header.split() == ["NAME", "PHASE", "SIZES", "BEST", "FID", "MEASURED", "AGE"]
    assert row.split()[:5] == ["cols", "Running", "1/3", "12.5", "7/9"]
    live = kubectl.obj("cols")
    assert live["spec"]["training"]["steps"] == 300 and live["status"]["summary"]["bestFid"] == 12.5


def test_invalid_objects_are_refused_naming_the_field(kubectl):
    unknown = experiment("unknown", ladder={"bogus": 1})
    assert 'unknown field "spec.ladder.bogus"' in kubectl.refused("apply", "-f", "-", stdin=unknown)
    wrong_type = experiment("wrongtype", steps="abc")
    message = kubectl.refused("apply", "--validate=false", "-f", "-", stdin=wrong_type)
    assert "spec.training.steps" in message and "must be of type integer" in message
    kubectl.run("apply", "--server-side", "-f", "-", stdin=experiment("patched"))
    message = kubectl.refused(
        "patch", "sx", "patched", "--type=merge", "-p", '{"spec":{"training":{"steps":"abc"}}}'
    )
    assert "spec.training.steps" in message
    message = kubectl.refused("patch", "sx", "patched", "--type=strategic", "-p", '{"spec":{"suspend":true}}')
    assert "application/strategic-merge-patch+json is not supported" in message
    assert "name part must consist of" in kubectl.refused("label", "sx", "patched", "bad key!=x")
    assert "RFC 1123 subdomain" in kubectl.refused("apply", "-f", "-", stdin=experiment("Bad_Name"))
    assert kubectl.obj("patched")["spec"]["training"]["steps"] == 300
    assert kubectl.run("get", "sx", "unknown", "wrongtype", "Bad_Name", check=False).returncode != 0


def test_server_side_apply_diff_and_dry_runs_change_nothing(kubectl):
    assert (
        "serverside-applied"
        in kubectl.run("apply", "--server-side", "-f", "-", stdin=experiment("ssa")).stdout
    )
    before = kubectl.obj("ssa")["metadata"]["resourceVersion"]
    changed = experiment("ssa", steps=600)
    for mode in ([], ["--server-side"]):
        diff = kubectl.run("diff", *mode, "-f", "-", stdin=changed, check=False)
        assert diff.returncode == 1, diff.stderr  # 1: differences found
        assert "-    steps: 300" in diff.stdout and "+    steps: 600" in diff.stdout
    dry = kubectl.run("apply", "--server-side", "--dry-run=server", "-f", "-", stdin=changed)
    assert "(server dry run)" in dry.stdout
    assert (
        "(server dry run)" in kubectl.run("delete", "sx", "ssa", "--dry-run=server").stdout
    )  # in DeleteOptions
    created = kubectl.run("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=experiment("ghost"))
    assert json.loads(created.stdout)["metadata"]["uid"]
    live = kubectl.obj("ssa")
    assert live["metadata"]["resourceVersion"] == before and live["spec"]["training"]["steps"] == 300
    assert "NotFound" in kubectl.refused("get", "sx", "ghost")
    kubectl.run("apply", "--server-side", "-f", "-", stdin=changed)
    assert kubectl.obj("ssa")["spec"]["training"]["steps"] == 600


def test_explain_reads_the_published_schema(kubectl):
    out = kubectl.run("explain", "sx.spec.training.steps").stdout
    assert "FIELD: steps <integer>" in out and "Optimizer steps" in out
    out = kubectl.run("explain", "sx.spec.training.steps", "--output", "plaintext-openapiv2").stdout
    assert "Optimizer steps" in out
    assert "widths" in kubectl.run("explain", "scalingexperiments.spec.ladder").stdout


def test_edit_with_an_editor_applies_valid_changes_only(kubectl, tmp_path):
    kubectl.run("apply", "-f", "-", stdin=experiment("edited"))

    def editor(value: str) -> dict:
        script = tmp_path / f"editor-{uuid.uuid4().hex[:6]}.py"
        script.write_text(EDITOR.format(value=value))
        return {"EDITOR": f"{sys.executable} {script}", "KUBE_EDITOR": f"{sys.executable} {script}"}

    kubectl.run("edit", "sx", "edited", env=editor("400"))
    live = kubectl.obj("edited")
    assert live["spec"]["training"]["steps"] == 400 and live["metadata"]["generation"] == 2
    proc = kubectl.run("edit", "sx", "edited", env=editor('"abc"'), check=False)
    assert proc.returncode != 0 and "is invalid" in proc.stderr + proc.stdout
    assert kubectl.obj("edited")["spec"]["training"]["steps"] == 400


def test_describe_shows_the_experiments_events(kubectl):
    kubectl.run("apply", "-f", "-", stdin=experiment("described"))
    uid = kubectl.obj("described")["metadata"]["uid"]
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "described.conformance"},
        "involvedObject": {
            "apiVersion": "ladder.dev/v1alpha1",
            "kind": "ScalingExperiment",
            "name": "described",
            "namespace": kubectl.namespace,
            "uid": uid,
        },
        "reason": "SizeTraining",
        "message": "size c16 started training",
        "type": "Normal",
        "source": {"component": "ladder-operator"},
        "firstTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "lastTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "count": 1,
    }
    kubectl.run("create", "-f", "-", stdin=json.dumps(event))
    described = kubectl.run("describe", "sx", "described").stdout
    events = described.split("Events:", 1)[1]
    assert "SizeTraining" in events and "size c16 started training" in events and "ladder-operator" in events


def test_wait_returns_when_the_condition_is_set(kubectl):
    kubectl.run("apply", "-f", "-", stdin=experiment("waited"))
    cmd = [kubectl.binary, "--kubeconfig", str(kubectl.kubeconfig), "-n", kubectl.namespace, "wait",
           "--for=condition=Ready", "sx/waited", "--timeout=30s"]  # fmt: skip
    waiting = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kubectl.env
    )
    try:
        assert (
            kubectl.run("wait", "--for=condition=Ready", "sx/waited", "--timeout=1s", check=False).returncode
            != 0
        )
        ready = {"type": "Ready", "status": "True", "reason": "Done", "message": "every size evaluated"}
        kubectl.run(
            "patch", "sx", "waited", "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"phase": "Succeeded", "conditions": [ready]}}),
        )  # fmt: skip
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    assert "condition met" in out


def test_typed_create_commands_send_protobuf_and_are_served(kubectl):
    kubectl.run("create", "configmap", "typed", "--from-literal=a=1", "--from-literal=b=2")
    kubectl.run("create", "secret", "generic", "typed", "--from-literal=token=s3cret")
    kubectl.run("create", "role", "typed", "--verb=get", "--resource=configmaps")
    got = json.loads(kubectl.run("get", "configmap/typed", "secret/typed", "role/typed", "-o", "json").stdout)
    cm, secret, role = got["items"]
    assert cm["data"] == {"a": "1", "b": "2"}
    assert secret["type"] == "Opaque" and secret["data"] == {"token": "czNjcmV0"}
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
