# messaging-service. `make run` and `make test` are all a newcomer needs: each
# creates the virtualenv and installs on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PY_DIRS := messaging tests $(wildcard bench)
BENCH_STAMP := $(VENV)/.bench-installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install run serve-api worker migrate schema test test-fast test-pg15 lint fmt bench bench-quick bench-tools clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP) ## create the virtualenv and install (pinned by constraints.txt)

run: $(STAMP) ## serve on 127.0.0.1:8080 (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/messaging serve --migrate

migrate: $(STAMP) ## apply messaging/schema/migrations with dbmate, then its triggers/
	$(BIN)/messaging migrate

schema: $(STAMP) ## rewrite messaging/schema/schema.sql from a fresh database built by the migrations
	$(BIN)/python -m tests.schema_dump messaging/schema/schema.sql

test: $(STAMP) ## run the tests (embedded PostgreSQL unless TEST_DATABASE_URL is set)
	$(BIN)/pytest -q

test-fast: $(STAMP) ## the tests without those marked slow (fault processes, > ~2 s)
	$(BIN)/pytest -q -m "not slow"

lint: $(STAMP) ## ruff and mypy (strict on the package)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy

fmt: $(STAMP) ## format and fix what ruff can
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)

# The peers (pgqueuer, procrastinate) and matplotlib: the `bench` extra only.
$(BENCH_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@touch $@

# wrk (Debian's package) drives the ingest scenario; where it cannot be
# installed, bench/loadgen.py (aiohttp, its own process) stands in.
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing wrk (apt-get)"; \
	    { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
	      || echo "wrk could not be installed: the aiohttp load generator stands in"; \
	  else \
	    echo "wrk not found: the aiohttp load generator stands in"; \
	  fi; }

bench: $(BENCH_STAMP) bench-tools ## the benchmark suite (~1 h): bench/results/latest.{md,json,png}
	$(BIN)/python -m bench.run

bench-quick: $(BENCH_STAMP) bench-tools ## the same scenarios, shorter (a few minutes)
	$(BIN)/python -m bench.run --quick

clean: ## remove the virtualenv and caches (keeps the embedded database's data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
