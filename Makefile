# messaging-service. `make run` and `make test` are all a newcomer needs: each
# creates the virtualenv and installs on first use.

PYTHON ?= python3
VENV   := .venv
# bench/ is optional: a checkout without it still lints.
LINTED := $(wildcard messaging tests bench)
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install run serve-api worker migrate schema test test-pg15 lint fmt bench bench-quick clean

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

migrate: $(STAMP) ## apply db/migrations with dbmate, then triggers/
	$(BIN)/messaging migrate

schema: $(STAMP) ## rewrite db/schema.sql from a fresh database built by the migrations
	$(BIN)/python -m tests.schema_dump db/schema.sql

test: $(STAMP) ## run the tests (embedded PostgreSQL unless TEST_DATABASE_URL is set)
	$(BIN)/pytest -q

lint: $(STAMP) ## ruff and mypy (strict on the package)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

fmt: $(STAMP) ## format and fix what ruff can
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check --fix $(LINTED)

clean: ## remove the virtualenv and caches (keeps the embedded database's data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
