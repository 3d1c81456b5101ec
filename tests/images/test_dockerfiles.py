"""Each component's Dockerfile, read statically (no container runtime is available here).

Checks what goes wrong silently in images: an extra that no longer exists in pyproject.toml, an
entry point that does not exist (the image builds, then every pod crashes), a root user, a
floating base image, unpinned dependencies, and weights that would download at run time.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from ladder_api.spec import EvaluationSpec
from tests.images.dockerfile import exec_form, stages

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONSTRAINED = {
    re.split(r"[=<>!~\[]", line)[0].strip().lower().replace("_", "-")
    for line in (ROOT / "constraints.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
COMPONENTS = {
    # component: (extra it installs, entry point the operator's pods or the chart run)
    "operator": ("operator", ["ladder", "operator"]),
    "trainer": ("trainer", ["python", "-m", "ladder_trainer"]),
    "evaluator": ("evaluator", ["python", "-m", "ladder_evaluator"]),
}
PINNED_IMAGE = re.compile(r"^[\w.\-/]+:[\w.\-]+@sha256:[0-9a-f]{64}$")
FLOATING_TAGS = {"latest", "slim", "bookworm", "3", "3.11", "3.11-slim", "3.11-slim-bookworm"}


def _stages(component: str):
    return stages(ROOT / component / "Dockerfile")


def _pip_installs(stage) -> list[list[str]]:
    """The argument lists of every `pip install` in a stage's RUN instructions."""
    out = []
    for run in stage.all("RUN"):
        for command in re.split(r"&&|;", run.args):
            words = shlex.split(command)
            for i in range(len(words) - 1):
                if words[i].endswith("pip") and words[i + 1] == "install":
                    out.append(words[i + 2:])
    return out


def _requirements(args: list[str]) -> list[str]:
    reqs, skip = [], False
    for word in args:
        if skip:
            skip = False
            continue
        if word in ("-c", "--constraint", "--extra-index-url", "--index-url", "-r", "-f"):
            skip = True
            continue
        if not word.startswith("-"):
            reqs.append(word)
    return reqs


@pytest.mark.parametrize("component", COMPONENTS)
def test_multi_stage_with_every_base_pinned_by_tag_and_digest(component):
    _, all_stages = _stages(component)
    assert len(all_stages) >= 2, "build and runtime stages keep compilers and caches out"
    names = {s.name for s in all_stages if s.name}
    for stage in all_stages:
        if stage.base in names:
            continue
        assert PINNED_IMAGE.match(stage.base), f"{stage.base} is not pinned by tag and digest"
        tag = stage.base.split("@")[0].rsplit(":", 1)[1]
        assert tag not in FLOATING_TAGS and re.search(r"\d+\.\d+\.\d+", tag), f"floating tag {tag}"


@pytest.mark.parametrize("component", COMPONENTS)
def test_runs_as_a_numeric_non_root_user(component):
    _, all_stages = _stages(component)
    users = all_stages[-1].all("USER")
    assert users, "the runtime stage sets no USER: the image would run as root"
    user = users[-1].args.split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-zero UID lets runAsNonRoot verify it"


@pytest.mark.parametrize("component", COMPONENTS)
def test_installs_its_extra_with_pinned_dependencies(component):
    extra, _ = COMPONENTS[component]
    _, all_stages = _stages(component)
    installs = [args for stage in all_stages for args in _pip_installs(stage)]
    assert installs
    extras_seen = set()
    for args in installs:
        assert "-c" in args and args[args.index("-c") + 1] == "constraints.txt", args
        for req in _requirements(args):
            match = re.fullmatch(r"\.\[(?P<extras>[\w,\-]+)\]", req)
            if match:
                extras_seen.update(match["extras"].split(","))
                continue
            name = re.split(r"[=<>!~\[]", req)[0].lower().replace("_", "-")
            assert "==" in req or name in CONSTRAINED, f"{req} is neither pinned nor in constraints.txt"
    assert extras_seen == {extra}
    assert extra in PYPROJECT["project"]["optional-dependencies"]


def test_operator_image_carries_no_jax_or_torch():
    deps = " ".join(PYPROJECT["project"]["optional-dependencies"]["operator"])
    assert not re.search(r"\b(jax|torch|flax)\b", deps)
    _, all_stages = _stages("operator")
    reqs = [r for stage in all_stages for args in _pip_installs(stage) for r in _requirements(args)]
    assert reqs == [".[operator]"]


def test_trainer_and_evaluator_have_jax_for_tpu():
    for component in ("trainer", "evaluator"):
        _, all_stages = _stages(component)
        reqs = [r for stage in all_stages for args in _pip_installs(stage) for r in _requirements(args)]
        assert "jax[tpu]" in reqs, component


def test_the_builtin_datasets_a_cluster_accepts_ship_in_the_trainer_and_evaluator_images():
    """ladder_api.validation lets `builtin:` data through on a cluster because scikit-learn (whose
    load_digits reads a file inside the package, no download) is in both images' extras."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(d.startswith("scikit-learn") for d in extras["trainer"])
    assert "ladder[trainer]" in extras["evaluator"]
    import sklearn.datasets

    assert (Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz").is_file()


@pytest.mark.parametrize("component", COMPONENTS)
def test_entry_point_exists(component):
    _, expected = COMPONENTS[component]
    _, all_stages = _stages(component)
    runtime = all_stages[-1]
    entrypoint = exec_form(runtime.all("ENTRYPOINT")[-1].args)
    cmd = exec_form(runtime.all("CMD")[-1].args) if runtime.all("CMD") else []
    argv = entrypoint + cmd
    assert argv[: len(expected)] == expected
    if argv[:2] == ["python", "-m"]:
        module = argv[2]
        found = importlib.util.find_spec(f"{module}.__main__")
        assert found is not None, f"python -m {module} has no __main__"
    else:
        assert argv[0] in PYPROJECT["project"]["scripts"], f"{argv[0]} is not a console script"
        from ladder_cli.main import build_parser

        parser = build_parser()
        commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
        assert argv[1] in commands, f"`ladder {argv[1]}` is not a subcommand"


def test_chart_runs_the_operator_image_entry_point():
    values = (ROOT / "charts/ladder/templates/operator/deployment.yaml").read_text()
    assert 'command: ["ladder", "operator"]' in values


@pytest.mark.parametrize("component", COMPONENTS)
def test_copied_sources_exist_and_are_not_docker_ignored(component):
    ignored = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    _, all_stages = _stages(component)
    for stage in all_stages:
        for copy in stage.all("COPY"):
            if copy.args.startswith("--from"):
                continue
            *sources, _ = copy.args.split()
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: no such path in the build context"
                assert not any(fnmatch.fnmatch(src, pat) for pat in ignored), f"{src} is in .dockerignore"
    for needed in (".venv", ".git", "ladder-runs"):
        assert needed in ignored


def test_evaluator_bakes_the_weights_the_spec_points_to():
    _, all_stages = _stages("evaluator")
    spec = EvaluationSpec()
    build_scripts = "".join(body for stage in all_stages for run in stage.all("RUN") for body in run.heredocs)
    for default in (spec.inception_weights_uri, spec.clip_weights_uri):
        path = Path(default)
        assert path.parent == Path("/opt/ladder/weights")
        assert path.name in build_scripts, f"{path.name} is not fetched at build time"
    runtime = all_stages[-1]
    copies = [c.args for c in runtime.all("COPY")]
    assert "--from=weights /opt/ladder/weights /opt/ladder/weights" in copies
    env = " ".join(e.args for e in runtime.all("ENV"))
    assert "HF_HUB_OFFLINE=1" in env


def test_weights_script_is_valid_python():
    _, all_stages = _stages("evaluator")
    (script,) = [body for stage in all_stages for run in stage.all("RUN") for body in run.heredocs]
    compile(script, "evaluator/Dockerfile:weights", "exec")
