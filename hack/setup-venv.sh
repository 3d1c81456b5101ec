#!/usr/bin/env bash
# Builds .venv for `make setup`: every package pinned by constraints.txt, installed by uv.
#
# Why uv: with ~160 pinned packages (torch among them, several GB) pip's resolver and serial
# unpacking took about five of CI's minutes; uv resolves the same pins and installs in parallel.
# uv does not read pip's configuration, so the indexes pip is configured with on this machine
# (local mirrors, find-links) are handed to it; without uv (no registry reachable for it), pip
# does the install as before.
set -euo pipefail

VENV=${1:?usage: setup-venv.sh VENV PYTHON}
PYTHON=${2:?usage: setup-venv.sh VENV PYTHON}
UV_VERSION=0.13.9

test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"

pip_config() {  # a key of pip's configuration, empty when unset
    "$VENV/bin/python" -m pip config get "$1" 2>/dev/null || true
}

if "$VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"; then
    args=()
    for url in $(pip_config global.extra-index-url); do args+=(--extra-index-url "$url"); done
    for dir in $(pip_config global.find-links); do args+=(--find-links "$dir"); done
    # Every package is pinned, so taking a pin from whichever index has it is safe.
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --index-strategy unsafe-best-match \
        "${args[@]}" -c constraints.txt -e '.[dev]'
else
    echo "setup-venv: uv unavailable, installing with pip (slower)" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
fi
