"""Files no API server would accept are refused in one line, fast, without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ladder_api.errors import SpecError
from ladder_api.loading import MAX_OBJECT_BYTES, load_experiment

HEAD = "apiVersion: ladder.dev/v1alpha1\nkind: ScalingExperiment\nmetadata:\n  name: big\n"


def _refused(path, match):
    with pytest.raises(SpecError) as err:
        load_experiment(path)
    assert len(err.value.problems) == 1 and match in err.value.problems[0], err.value.problems


def test_deep_flow_nesting_is_refused(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text(HEAD + "spec:\n  ladder:\n    widths: " + "[" * 20_000 + "]" * 20_000 + "\n")
    _refused(path, "nests deeper than 64 levels")


def test_deep_block_nesting_is_refused(tmp_path):
    body = "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n"
    path = tmp_path / "deep-block.yaml"
    path.write_text(HEAD + "spec:\n" + "\n".join("  " + line for line in body.splitlines()) + "\n")
    _refused(path, "nests deeper than 64 levels")


def test_a_file_larger_than_an_api_object_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("w") as fh:
        fh.write(HEAD + "spec:\n  ladder:\n    widths: [")
        fh.write("64, " * (MAX_OBJECT_BYTES // 4 + 10) + "64]\n")
    _refused(path, "a Kubernetes object is at most 1.5 MiB")


def test_annotations_over_256_kib_are_refused(tmp_path):
    path = tmp_path / "annotated.yaml"
    path.write_text(HEAD + f"  annotations:\n    note: {'x' * (300 * 1024)}\nspec: {{}}\n")
    _refused(path, "metadata.annotations: ")


def test_the_cli_answers_a_hostile_file_with_one_line_and_exit_2(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text(HEAD + "spec: " + "[" * 50_000 + "\n")
    proc = subprocess.run([sys.executable, "-m", "ladder_cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr, proc.stderr
