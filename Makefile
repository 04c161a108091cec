# One task runner over the lockfile. Every target bootstraps what it needs: a pinned uv
# (installed with pip into .cache/), then the locked environment (.venv/).
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .cache/tools
UV := $(TOOLS)/bin/uv
RUN := $(UV) run --locked --no-sync

export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.DEFAULT_GOAL := help
.PHONY: help sync lint typecheck test unit integration e2e demo bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(TOOLS) uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml devkit/pyproject.toml uv.lock
	$(UV) sync --locked --all-extras
	@touch $@

sync: .venv/.synced  ## install the locked environment

lint: sync  ## ruff lint + format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: sync  ## mypy --strict
	$(RUN) mypy

unit: sync  ## unit tests (no network)
	$(RUN) pytest tests/unit

integration: sync  ## integration tests (real broker, registry and simulator processes)
	$(RUN) pytest tests/integration

e2e: sync  ## end-to-end tests (lsq-sink and lsq-sink demo as real processes)
	$(RUN) pytest tests/e2e

demo: sync  ## run the connector end to end on a local stack with sample CDC events
	$(RUN) lsq-sink demo

test: lint typecheck  ## lint, type check and the whole test suite
	$(RUN) pytest

clean:  ## remove the environment and caches
	rm -rf .venv .cache .mypy_cache .ruff_cache .pytest_cache

soak: sync  ## reliability trials with larger backlogs; prints the README's Reliability table
	$(RUN) python -m lsq_stack.trials --soak

bench: sync  ## benchmarks: budget use, gate designs, overhead vs bare httpx, latency, tracking
	$(RUN) python -m lsq_stack.bench
	$(RUN) python -m lsq_stack.bench_status
