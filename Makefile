# `make run` and `make test` are all a fresh machine needs: they create .venv and install first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Offline machines point the loader at a local copy of the four IDX files; elsewhere Keras
# downloads Fashion-MNIST into KERAS_HOME as usual.
SHARED_DATA := $(wildcard ../shared/datasets/fashion-mnist)
ifneq ($(SHARED_DATA),)
export FASHION_MNIST_DIR ?= $(abspath $(SHARED_DATA))
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test check lint typecheck pytest train bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## run: start the gateway (embedded backend) on 127.0.0.1:8000; trains a quick model first if none
run: $(STAMP)
	$(BIN)/python -m gateway

## test: lint, type-check, then the whole test suite
test: check pytest

check: lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		echo "NOTE: no chromium/chromedriver: the browser tests of the gallery will be SKIPPED (apt-get install chromium chromium-driver)"
	$(BIN)/pytest

## train: train and publish one version with PROFILE (default quick)
PROFILE ?= quick
train: $(STAMP)
	$(BIN)/python -m training --profile $(PROFILE) --model-base-path models/fashion_gan

## bench: the speed benchmark (prints a table)
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'  # the seed's Flask + pyplot path, the baseline
	$(BIN)/python -m benchmarks.serving

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
