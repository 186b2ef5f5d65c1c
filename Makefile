# `make run` and `make test` are all a fresh machine needs: they create .venv and install first.
# `make run` installs what serving needs, `make test` adds the test tools (the dev extra); both
# at the exact versions of requirements/lock.txt, each with a stamp of its own that a change of
# pyproject.toml or of the lock makes stale.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements/lock.txt
BASE_STAMP := $(VENV)/.installed-base
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# the lock as constraints: it pins the version of whatever the target installs, and nothing more;
# setuptools comes from the lock too (no build isolation), so the build is pinned as well
PIP_INSTALL = $(BIN)/python -m pip install --quiet --constraint $(LOCK)
# Offline machines point the loader at a local copy of the four IDX files; elsewhere Keras
# downloads Fashion-MNIST into KERAS_HOME as usual.
SHARED_DATA := $(wildcard ../shared/datasets/fashion-mnist)
ifneq ($(SHARED_DATA),)
export FASHION_MNIST_DIR ?= $(abspath $(SHARED_DATA))
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test test-fast check lint typecheck pytest venv venv-run venv-test lock train bench clean

$(BASE_STAMP): $(LOCK)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip setuptools
	touch $@

$(RUN_STAMP): $(BASE_STAMP) pyproject.toml
	$(PIP_INSTALL) --no-build-isolation -e .
	touch $@

$(TEST_STAMP): $(BASE_STAMP) pyproject.toml
	$(PIP_INSTALL) --no-build-isolation -e '.[dev]'
	touch $@

## venv-run / venv-test: only the installs of `make run` / `make test`
venv-run: $(RUN_STAMP)
venv-test: $(TEST_STAMP)
venv: venv-test

## run: start the gateway (embedded backend) on 127.0.0.1:8000; trains a quick model first if none
run: $(RUN_STAMP)
	$(BIN)/python -m gateway

## test: lint, type-check, then the whole test suite (the 15 slowest tests listed at the end)
test: check pytest

## test-fast: the tests not marked slow, no lint or type check
test-fast: PYTEST_ARGS := -m "not slow"
test-fast: pytest

check: lint typecheck

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

PYTEST_ARGS ?=
pytest: $(TEST_STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		echo "NOTE: no chromium/chromedriver: the browser tests of the gallery will be SKIPPED (apt-get install chromium chromium-driver)"
	$(BIN)/pytest --durations=15 $(PYTEST_ARGS)

## lock: rewrite requirements/lock.txt from .venv (after an upgrade there has passed `make test`)
lock: $(TEST_STAMP)
	{ grep '^#' $(LOCK); $(BIN)/python -m pip freeze --all --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	touch $(BASE_STAMP) $(RUN_STAMP) $(TEST_STAMP)

## train: train and publish one version with PROFILE (default quick)
PROFILE ?= quick
train: $(RUN_STAMP)
	$(BIN)/python -m training --profile $(PROFILE) --model-base-path models/fashion_gan

## bench: the speed benchmark (prints a table)
bench: $(TEST_STAMP)
	$(PIP_INSTALL) --no-build-isolation -e '.[dev,bench]'  # the seed's Flask + pyplot path, the baseline
	$(BIN)/python -m benchmarks.serving

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
