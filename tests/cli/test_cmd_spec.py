"""`ladder validate | render | plan | crd`: exit codes, one line per problem, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ladder_api import grid
from ladder_api.crd import crd_yaml
from ladder_api.loading import load_experiment
from ladder_api.plan import RunConfig, expand
from ladder_cli.main import main
from tests.conftest import EXAMPLES, REPO_ROOT

QUICKSTART = str(REPO_ROOT / "tests" / "cli" / "tiny-experiment.yaml")
PAPER = str(EXAMPLES / "paper-v5e.yaml")


def ladder(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ladder_cli.main", *args], capture_output=True, text=True, cwd=REPO_ROOT
    )


def write(tmp_path, text: str) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


GOOD = """\
apiVersion: ladder.dev/v1alpha1
kind: ScalingExperiment
metadata: {name: small}
spec:
  ladder: {widths: [64, 96]}
  data: {autoencoder: {weightsUri: /opt/ladder/weights/sd-vae}}
"""


def run_main(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_prints_one_ok_line_and_the_estimate(capsys):
    code, out, err = run_main(capsys, "validate", PAPER)
    assert code == 0 and err == ""
    line, grid_size, cost = out.splitlines()
    assert line.startswith("OK ladder/paper-v5e: 11 sizes (c64 c96")
    assert "2x v5litepod-256 for c768" in line and "evaluation: v5litepod-8-1host" in line
    runs = expand(load_experiment(PAPER)).runs  # budgets add steps that depend on each size's cost
    points = [len(grid.run_grid_points(run)) for run in runs]
    assert grid_size.strip().startswith(
        f"grid: 1 checkpoint x {min(points)}-{max(points)} sampling settings x 2 metrics = "
        f"{2 * min(points)}-{2 * max(points)} measurements per size, {2 * sum(points):,} in all "
        f"(of at most 100,000), {sum(points):,} result objects")
    assert grid_size.endswith("KiB of 1024 KiB")
    assert cost.startswith("estimate: ") and "chip-hours (training " in cost and "storage " in cost


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spec: [\n", "invalid YAML"),
        (GOOD.replace("widths: [64, 96]", "widths: [64, 96], widht: 3"),
         "spec.ladder.widht: unknown field"),
        (GOOD + "  resources: {slices: [{sliceType: v4-8}]}\n",
         "spec.resources.slices[0].sliceType: unknown TPU slice type 'v4-8'; valid: v5litepod-1,"),
        (GOOD.replace("[64, 96]", "[64, 90]"), "spec.ladder.widths: width 90 x channelMult 1"),
        ("- just\n- a list\n", "must be a mapping"),
        ("", "no YAML document"),
        (GOOD.replace("kind: ScalingExperiment", "kind: Job"), "kind: Input should be 'ScalingExperiment'"),
    ],
    ids=["bad-yaml", "unknown-field", "unknown-slice", "bad-width", "not-a-mapping", "empty", "wrong-kind"],
)
def test_validate_user_errors(tmp_path, capsys, text, expected):
    path = write(tmp_path, text)
    code, out, err = run_main(capsys, "validate", path)
    assert code == 2 and out == ""
    assert expected in err and err.startswith(f"{path}: ")
    assert all(line.startswith(f"{path}: ") for line in err.splitlines())


def test_missing_file(capsys, tmp_path):
    code, _, err = run_main(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and err.strip().endswith("nope.yaml: file not found")


def test_unknown_size(capsys):
    code, _, err = run_main(capsys, "render", QUICKSTART, "--size", "100")
    assert code == 2 and "--size 100: not one of spec.ladder.widths (32, 64, 96)" in err


def test_render_one_size(capsys):
    code, out, _ = run_main(capsys, "render", QUICKSTART, "--size", "64", "--uid", "u-1")
    docs = list(yaml.safe_load_all(out))
    assert code == 0
    kinds = [d["kind"] for d in docs]
    assert kinds == ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "JobSet", "JobSet"]
    assert [d["metadata"]["name"] for d in docs[-2:]] == ["quickstart-c64", "quickstart-c64-eval"]
    assert all(d["metadata"]["ownerReferences"][0]["uid"] == "u-1" for d in docs)


def test_plan_writes_the_configs_pods_read(capsys, tmp_path):
    code, out, _ = run_main(capsys, "plan", QUICKSTART, "-o", str(tmp_path / "plan"))
    assert code == 0
    files = sorted((tmp_path / "plan").glob("*.json"))
    assert [f.name for f in files] == ["quickstart-c32.json", "quickstart-c64.json", "quickstart-c96.json"]
    assert out.split() == [str(f) for f in files]
    run = RunConfig.model_validate_json(files[0].read_text())
    assert run.width == 32 and run.name == "quickstart-c32"


def test_plan_to_stdout_one_size(capsys):
    code, out, _ = run_main(capsys, "plan", QUICKSTART, "--size", "96", "--output-uri", "/data")
    run = RunConfig.model_validate(json.loads(out))
    assert code == 0 and run.width == 96 and run.paths.root == "/data/quickstart/c96"


def test_crd_prints_the_chart_copy(capsys):
    code, out, _ = run_main(capsys, "crd")
    assert code == 0 and out == crd_yaml()


def test_subprocess_render_is_byte_identical_and_errors_have_no_traceback(tmp_path):
    first, second = ladder("render", PAPER), ladder("render", PAPER)
    assert first.returncode == 0 and first.stderr == ""
    assert first.stdout == second.stdout and len(first.stdout) > 10_000
    bad = ladder("validate", write(tmp_path, GOOD.replace("[64, 96]", "[64, 90]")))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1 and "spec.ladder.widths" in bad.stderr


def test_validate_refuses_a_size_its_slice_cannot_hold(tmp_path, capsys):
    """The analytic memory plan runs in `ladder validate`: the message names the size, the
    estimate per chip and the smallest slice that would hold it."""
    spec = GOOD.replace(
        "ladder: {widths: [64, 96]}",
        "ladder: {widths: [64, 320]}\n  training: {globalBatch: 256}\n"
        "  resources: {slices: [{sliceType: v5litepod-16}]}",
    )
    code, out, err = run_main(capsys, "validate", write(tmp_path, spec))
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert "spec.ladder.widths: width 320 needs about" in line and "GiB per chip on v5litepod-16" in line
    assert "the smallest slice that fits is" in line


def test_validate_accepts_the_same_sizes_on_a_slice_that_holds_them(tmp_path, capsys):
    spec = GOOD.replace(
        "ladder: {widths: [64, 96]}",
        "ladder: {widths: [64, 320]}\n  training: {globalBatch: 256}\n"
        "  resources: {slices: [{sliceType: v5p-64}]}",
    )
    code, out, _ = run_main(capsys, "validate", write(tmp_path, spec))
    assert code == 0 and out.startswith("OK default/small: 2 sizes")


def test_validate_refuses_a_grid_past_the_limits(tmp_path, capsys):
    """520 widths rendered a 1.1 MB run ConfigMap (past a ConfigMap's 1 MiB); now the spec's cap
    refuses them, naming the field and the limit."""
    widths = ", ".join(str(32 * (k + 1)) for k in range(520))
    code, _, err = run_main(capsys, "validate", write(tmp_path, GOOD.replace("64, 96", widths)))
    assert code == 2 and err.startswith(f"{tmp_path / 'exp.yaml'}: spec.ladder.widths: ")
    assert "at most 48 items" in err


def test_validate_warns_of_what_only_a_cluster_refuses_and_refuses_it_with_cluster(tmp_path, capsys):
    """Issue 13: `outputUri: ./ladder-runs` runs with `ladder run`, and the operator sets it Invalid
    (it used to accept it, and its pods could only fail after TPU admission). `ladder validate`
    runs the operator's checks: a warning by default, an error with --cluster."""
    code, out, err = run_main(capsys, "validate", QUICKSTART)
    assert code == 0 and out.startswith("OK ")
    (line,) = err.splitlines()
    assert line.startswith(f"{QUICKSTART}: warning: spec.storage.outputUri: ./ladder-runs ")
    assert "on a cluster only" in line
    code, out, err = run_main(capsys, "validate", "--cluster", QUICKSTART)
    assert code == 2 and out == ""
    assert err.splitlines() == [line.replace("warning: ", "").split(" [on a cluster only")[0]]
    code, out, err = run_main(capsys, "validate", "--cluster", PAPER)
    assert code == 0 and err == ""
    cluster_ready = GOOD + "  storage: {outputUri: gs://b/ladder/}\n  training: {globalBatch: 100}\n"
    code, _, err = run_main(capsys, "validate", "--cluster", write(tmp_path, cluster_ready))
    assert code == 2 and "spec.training.globalBatch: 100 is not divisible by the 16 chips" in err


def test_validate_refuses_a_local_prompt_set_smaller_than_num_samples(tmp_path, capsys):
    import numpy as np

    prompts = tmp_path / "prompts.npz"
    np.savez(prompts, captions=np.array(["a", "b", "c"]), context=np.zeros((3, 77, 1024), np.float16),
             uncond=np.zeros((77, 1024), np.float32))
    reference = f"referenceSet: {{uri: {prompts}, statsUri: {tmp_path / 's.npz'}}}"
    spec = GOOD.replace("data: {", f"data: {{{reference}, ") + "  evaluation: {numSamples: 4}\n"
    code, out, err = run_main(capsys, "validate", write(tmp_path, spec))
    assert code == 2 and "holds 3 prompts but evaluation.numSamples is 4" in err
    enough = spec.replace("numSamples: 4", "numSamples: 3")
    code, out, err = run_main(capsys, "validate", write(tmp_path, enough))
    assert "prompts" not in err, err  # (GOOD's sizes need a larger slice: that is all it reports)


def test_validate_refuses_what_the_evaluator_cannot_run_naming_the_field(tmp_path, capsys):
    """Each a UserError of the evaluator after training otherwise (ladder_evaluator.prompts,
    metrics.clip_score, trainer models.sd_vae): refused here with the field named."""
    import json as _json

    import numpy as np

    prompts = tmp_path / "prompts.npz"
    meta = _json.dumps({"text_encoder": {"name": "clip-vit-l14", "hash": None}})
    np.savez(prompts, captions=np.array(["a", "b"]), context=np.zeros((2, 4, 8), np.float16),
             uncond=np.zeros((4, 8), np.float32), meta=np.array(meta))
    spec = (GOOD.replace("ladder: {widths: [64, 96]}", "ladder: {widths: [64, 96], contextTokens: 77}")
            .replace("data: {autoencoder: {weightsUri: /opt/ladder/weights/sd-vae}}",
                     f"data: {{referenceSet: {{uri: {prompts}, statsUri: /s.npz}}}}")
            + "  evaluation: {numSamples: 2, metrics: [fid, clip, adherence], clipWeightsUri: null}\n")
    code, out, err = run_main(capsys, "validate", write(tmp_path, spec))
    assert code == 2 and out == ""
    lines = [line.split(": ", 1)[1] for line in err.splitlines() if "widths" not in line]
    by_field = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines}
    assert set(by_field) == {"spec.data.autoencoder.weightsUri", "spec.evaluation.clipWeightsUri",
                             "spec.data.referenceSet.uri", "spec.evaluation.metrics"}, err
    assert "sd-vae" in by_field["spec.data.autoencoder.weightsUri"]
    assert "adherence" in by_field["spec.evaluation.metrics"]
    uri_lines = [line for line in lines if line.startswith("spec.data.referenceSet.uri")]
    assert any("(4, 8), but ladder.contextTokens x ladder.contextDim is (77, 1024)" in x for x in uri_lines)
    assert any("embedded with clip-vit-l14" in x and "clip-vit-h14" in x for x in uri_lines)


def test_ladder_run_refuses_it_before_training(tmp_path, capsys):
    """The same checks stop `ladder run` before any size trains (nothing written)."""
    spec = Path(QUICKSTART).read_text().replace("kind: identity", "kind: sd-vae")
    assert "kind: sd-vae" in spec
    code, out, err = run_main(capsys, "run", write(tmp_path, spec), "-o", str(tmp_path / "out"))
    assert code == 2 and "spec.data.autoencoder.weightsUri: the sd-vae autoencoder needs its weights" in err
    assert not (tmp_path / "out").exists()
