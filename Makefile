# System Design Lab. Two commands:
#   make test    lint, tests, and every benchmark module once (what CI runs)
#   make bench   every comparison, measured; results under bench/results/
# Both create .venv and install the lab when needed, and start the servers.
#
# Also: make services | services-stop | services-status | lint | clean

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install: make reinstalls when setup.cfg or
# pyproject.toml is newer than it, or when .venv is gone.
STAMP := $(VENV)/.installed
SERVICES := bash infra/services.sh

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: test bench venv services services-stop services-status lint clean

test: venv services
	@echo "==> lint: ruff check ."
	@$(BIN)/ruff check .
	@echo "==> tests: pytest tests"
	@$(BIN)/pytest tests
	@echo "==> benchmark modules, each run once: pytest bench --benchmark-disable"
	@# pytest exits 5 when it collects no test: no benchmark module yet is not a failure.
	@status=0; $(BIN)/pytest bench --benchmark-disable || status=$$?; \
	if [ $$status -eq 5 ]; then echo "bench: no benchmark modules yet"; \
	elif [ $$status -ne 0 ]; then exit $$status; fi

bench: venv services
	@echo "==> bench: python -m bench"
	@$(BIN)/python -m bench

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@echo "==> venv: $(VENV), with the lab installed (pip install -e .[test,bench])"
	@[ -x $(BIN)/pip ] || $(PYTHON) -m venv $(VENV) || \
	{ echo "venv: '$(PYTHON) -m venv $(VENV)' failed (on Debian: apt-get install python3-venv)" >&2; exit 1; }
	@# -qq: errors only (a machine's pip.conf may add an index that warns for every package).
	@$(BIN)/pip install -qq -e '.[test,bench]'
	@touch $@

services:
	@echo "==> services: infra/services.sh start"
	@$(SERVICES) start

services-stop:
	@$(SERVICES) stop

services-status:
	@$(SERVICES) status

lint: venv
	@echo "==> lint: ruff check ."
	@$(BIN)/ruff check .

# Not bench/results (the measured record) and not .run/ (pid files of running servers).
clean:
	@echo "==> clean: removing $(VENV), caches and build files"
	@rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .benchmarks build dist ./*.egg-info
	@find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
