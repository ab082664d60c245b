# The two commands that matter: `make dev` runs the whole system, `make test` passes the tests.
# Each installs what it needs first.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif

.PHONY: help install dev test lint format typecheck pytest migrate bench browser clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## install uv (if missing) and the locked dependencies
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet --compile-bytecode

dev: install ## run every process in the foreground (migrates and loads demo data first)
	@./scripts/dev.sh

browser: ## install Debian's chromium for the browser tests when missing
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: install Debian's chromium package (apt-get install chromium)"; exit 1; fi; }

lint: install ## ruff (lint and format check) and mypy
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy

format: install ## format the code
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

pytest: install browser ## the test suite against real PostgreSQL and Redis
	@$(UV) run --frozen pytest

test: lint pytest ## lint, type-check and run every test

migrate: install ## create the database if missing and apply migrations/
	@$(UV) run --frozen python -m shared.bootstrap migrate

bench: install ## benchmarks (prints figures; takes a few minutes)
	@$(UV) run --frozen python -m bench

clean: ## remove caches
	rm -rf .mypy_cache .ruff_cache .pytest_cache
