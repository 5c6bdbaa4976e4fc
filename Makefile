# CGT Lakehouse — developer entry points. `make help` lists them.
# Area-specific targets live in mk/*.mk (lab, bundle, ...).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
# uv is used from PATH when present; otherwise it is installed once into a private venv (works on Debian's
# externally-managed Python, PEP 668) and used from there.
UV_HOME := $(HOME)/.local/share/cgt-lakehouse/uv
UV := $(shell command -v uv 2>/dev/null || echo $(UV_HOME)/bin/uv)
# Every recipe and every program it starts (bundle/build.py, molecule, lab scripts) finds the same uv on PATH.
export PATH := $(dir $(UV)):$(PATH)
export UV_PYTHON ?= python3.11

.PHONY: help setup demo test unit lint fmt clean

help: ## List the make targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(UV_HOME)/bin/uv:
	python3 -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet uv==$(UV_VERSION)

setup: .venv/.synced ## Install uv if absent and create .venv from uv.lock

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

demo: setup ## Generate synthetic CGT data and run the whole pipeline on embedded defaults
	$(UV) run lakehouse demo

unit: setup ## Run the pytest suite
	$(UV) run pytest

test: lint unit ## Lint everything, then run the pytest suite (what CI runs first)

lint: setup ## ruff, yamllint, ansible-lint (production profile)
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run yamllint --strict .
	$(UV) run ansible-lint

fmt: setup ## Format Python sources
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

clean: ## Remove generated local state (keeps .venv)
	rm -rf .lakehouse dbt/target dbt/logs

-include mk/*.mk
