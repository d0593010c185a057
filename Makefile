# The two front doors: `make demo` and `make test`. Both build their own virtualenv.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint format types pytest sam-check bench venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(STAMP)

# AWS SAM tools (~500 MB, with their own pins) live in their own virtualenv, not the dev one.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
# `sam build` without a container needs the template's runtime (python3.12) on PATH.
# The interpreter itself, not a pyenv shim (a shim directory first on PATH makes pyenv recurse).
PYTHON312 ?= $(firstword $(wildcard /root/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12))
export SAM_CLI_TELEMETRY := 0

$(SAM_STAMP):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --disable-pip-version-check 'aws-sam-cli==1.170.0' 'cfn-lint==1.58.0'
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

format: $(STAMP)
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# cfn-lint, the project's own Runtime/Timeout check (cfn-lint misses both on SAM functions),
# and `sam build` of the example; this package comes from a local wheel (not yet on PyPI).
sam-check: $(STAMP) $(SAM_STAMP)
	@test -n "$(PYTHON312)" || { echo "sam-check needs python3.12 (set PYTHON312=...)"; exit 1; }
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(BIN)/python scripts/check_template.py template.yaml
	rm -rf .sam/wheels .sam/build
	$(BIN)/python -m pip wheel -q --disable-pip-version-check --no-deps -w .sam/wheels .
	PATH="$(dir $(PYTHON312)):$$PATH" PIP_FIND_LINKS="$(CURDIR)/.sam/wheels $${PIP_FIND_LINKS:-}" \
		$(SAM_VENV)/bin/sam build --template-file template.yaml --build-dir .sam/build --cache-dir .sam/cache
	test -f .sam/build/DoowExampleFunction/doow_serverless/aws_lambda.py
	test -d .sam/build/DoowExampleFunction/aws_lambda_powertools

test: lint types pytest sam-check

demo: $(STAMP)
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[bench]'
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-* .mypy_cache .ruff_cache .pytest_cache .demo .bench .sam .aws-sam
