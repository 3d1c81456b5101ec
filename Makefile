# The two commands a newcomer types: `make quickstart` and `make test`.
# Everything else here is what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup test lint quickstart demo crd clean

setup: $(STAMP)

# Idempotent: the venv is rebuilt only when the dependency lists change.
$(STAMP): pyproject.toml constraints.txt
	hack/setup-venv.sh $(VENV) $(PYTHON)
	@touch $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# CI's suite: everything but the end-to-end tests marked slow (each runs real trainers and
# evaluators as subprocesses for minutes on 2 cores); `make test-all` runs those too.
test: lint
	$(BIN)/python -m pytest -m "not slow"

test-all: lint
	$(BIN)/python -m pytest

# The whole study: 3 sizes trained, evaluated over the grid, then the report.
# Ctrl-C, then run it again: it resumes from checkpoints and skips recorded measurements.
quickstart: setup
	$(BIN)/ladder run examples/quickstart.yaml
	@echo "report: $(CURDIR)/ladder-runs/quickstart/report.html (and report.md)"

# The latent study (examples/latent-local.yaml): Fashion-MNIST (installed by apt-get when
# missing), the pretrained MiniLM text encoder, an autoencoder and three U-Nets
# trained here, samples decoded, scored by FID on the pretrained Inception network, reported. Re-run after an interruption: finished steps
# are skipped.
demo: setup $(FASHION_MNIST)
	$(BIN)/python hack/latent_demo.py

# Fashion-MNIST is a Debian package (dataset-fashion-mnist); installed here when missing.
$(FASHION_MNIST):
	@echo "Fashion-MNIST is not installed: apt-get install -y dataset-fashion-mnist"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y dataset-fashion-mnist

crd: setup
	$(BIN)/ladder crd > charts/ladder/crds/scalingexperiments.ladder.dev.yaml

clean:
	rm -rf $(VENV) .pytest_cache ladder-runs
