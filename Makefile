# Greenzone — one command does each job.
SHELL := /bin/bash
PYTHON ?= python3
UV_HOME := .greenzone/uv
UV := $(UV_HOME)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test lint migrate contracts bench clean

$(UV):
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --disable-pip-version-check "uv>=0.5"

$(VENV)/.installed: $(UV) pyproject.toml uv.lock libs/common/pyproject.toml $(wildcard services/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --all-extras --python $(PYTHON)
	touch $@

install: $(VENV)/.installed  ## install the workspace into .venv

run: install  ## start PostgreSQL, the broker and the four services; Ctrl-C stops everything
	$(VENV)/bin/greenzone dev run

test: install  ## the whole suite, against real PostgreSQL and the real broker started by fixtures
	$(PY) -m pytest -q

lint: install  ## ruff everywhere, mypy strict on libs/common
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/common/src

migrate: install  ## run every service's migrations against GREENZONE_DATABASE_URL (or the embedded one)
	$(VENV)/bin/greenzone dev migrate

contracts: install  ## write docs/asyncapi.yaml and docs/schemas/ from the event registry
	$(VENV)/bin/greenzone contracts export --out docs

bench: install  ## benchmarks; each prints a table (BENCH=bench/bench_change.py for one)
	@set -e; for b in $(or $(BENCH),$(wildcard bench/bench_*.py)); do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf $(VENV) .greenzone
