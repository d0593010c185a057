# The two front doors: `make demo` and `make test`. Both build their own virtualenv.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lint format types pytest sam-check bench venv clean

# Every virtualenv installs from a lock file (requirements/*.txt, written by `make lock`),
# so a fresh clone checks with exactly the tools and packages it checks with today.
PIP_INSTALL = python -m pip install -q --disable-pip-version-check

$(STAMP): pyproject.toml dev/pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP_INSTALL) --upgrade pip
	$(BIN)/$(PIP_INSTALL) -r requirements/dev.txt -e . -e ./dev
	touch $@

venv: $(STAMP)

# AWS SAM tools (~500 MB, with their own pins) live in their own virtualenv, not the dev one.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
# `sam build` without a container needs the template's runtime (python3.12) on PATH.
# The interpreter itself, not a pyenv shim (a shim directory first on PATH makes pyenv recurse).
PYTHON312 ?= $(firstword $(wildcard /root/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12))
export SAM_CLI_TELEMETRY := 0

$(SAM_STAMP): requirements/sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/$(PIP_INSTALL) -r requirements/sam.txt
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check src dev/src tests bench scripts
	$(BIN)/ruff format --check src dev/src tests bench scripts

format: $(STAMP)
	$(BIN)/ruff format src dev/src tests bench scripts
	$(BIN)/ruff check --fix src dev/src tests bench scripts

types: $(STAMP)
	$(BIN)/mypy

# Every skipped test is listed with its reason, and a skip tests/skips.py does not allow
# fails the run (for example a missing Chromium, or a filesystem refusing chattr).
pytest: export DOOW_STRICT_SKIPS := 1
pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# cfn-lint (which weighs both values of every condition), the project's own checks (cfn-lint
# misses a bad Runtime or Timeout on SAM functions; the forwarder switch), and `sam build` of
# the example with the forwarder on and off; this package comes from a local wheel (not yet
# on PyPI).
SAM_BUILD = PATH="$(dir $(PYTHON312)):$$PATH" PIP_FIND_LINKS="$(CURDIR)/.sam/wheels $${PIP_FIND_LINKS:-}" \
	$(SAM_VENV)/bin/sam build --template-file template.yaml --cache-dir .sam/cache
sam-check: $(STAMP) $(SAM_STAMP)
	@test -n "$(PYTHON312)" || { echo "sam-check needs python3.12 (set PYTHON312=...)"; exit 1; }
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(BIN)/python scripts/check_template.py template.yaml
	rm -rf .sam/wheels .sam/build .sam/build-off
	$(BIN)/python -m pip wheel -q --disable-pip-version-check --no-deps -w .sam/wheels .
	$(SAM_BUILD) --build-dir .sam/build --parameter-overrides DoowForwarder=true
	test -f .sam/build/DoowExampleFunction/doow_serverless/aws_lambda/__init__.py
	test -d .sam/build/DoowExampleFunction/aws_lambda_powertools
	test -f .sam/build/DoowForwarderFunction/doow_serverless/forwarders/aws.py
	$(SAM_BUILD) --build-dir .sam/build-off --parameter-overrides DoowForwarder=false
	test -f .sam/build-off/DoowExampleFunction/doow_serverless/aws_lambda/__init__.py

# Vercel's real Python runtime (vercel-runtime needs Python >= 3.12), the frameworks the
# Vercel tests and example use, and this package, in their own virtualenv. `make test`
# builds it; the Vercel tests fail rather than skip when it is missing under `make test`.
VERCEL_VENV := .venv-vercel
VERCEL_STAMP := $(VERCEL_VENV)/.installed
export DOOW_VERCEL_PYTHON ?= $(CURDIR)/$(VERCEL_VENV)/bin/python

$(VERCEL_STAMP): pyproject.toml requirements/vercel.txt
	@test -n "$(PYTHON312)" || { echo "the Vercel venv needs python3.12 (set PYTHON312=...)"; exit 1; }
	$(PYTHON312) -m venv $(VERCEL_VENV)
	$(VERCEL_VENV)/bin/$(PIP_INSTALL) -r requirements/vercel.txt -e .
	touch $@

.PHONY: vercel-venv
vercel-venv: $(VERCEL_STAMP)
pytest: $(VERCEL_STAMP)
pytest: export DOOW_VERCEL_REQUIRED := 1
demo: $(VERCEL_STAMP)
bench: $(VERCEL_STAMP)

# The Azure Functions library workers (azure-functions-runtime: Python >= 3.13) with
# azure-functions 2.x and this package, in their own virtualenv; the Azure worker tests run
# function apps under it. `make test` builds it; they fail rather than skip when it is missing.
PYTHON313 ?= $(firstword $(wildcard /root/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
AZURE_VENV := .venv-azure
AZURE_STAMP := $(AZURE_VENV)/.installed
export DOOW_AZURE_PYTHON ?= $(CURDIR)/$(AZURE_VENV)/bin/python

$(AZURE_STAMP): pyproject.toml dev/pyproject.toml requirements/azure.txt
	@test -n "$(PYTHON313)" || { echo "the Azure venv needs python3.13 (set PYTHON313=...)"; exit 1; }
	$(PYTHON313) -m venv $(AZURE_VENV)
	$(AZURE_VENV)/bin/$(PIP_INSTALL) -r requirements/azure.txt -e . -e ./dev
	touch $@

.PHONY: azure-venv
azure-venv: $(AZURE_STAMP)
pytest: $(AZURE_STAMP)
pytest: export DOOW_AZURE_REQUIRED := 1
demo: $(AZURE_STAMP)
bench: $(AZURE_STAMP)

# The oldest Python the package supports: the core's tests run there too (no platform
# runtimes: those need 3.11+ and have their own environments above).
PYTHON310 ?= $(firstword $(wildcard /root/.pyenv/versions/3.10*/bin/python3.10) $(shell command -v python3.10))
PY310_VENV := .venv-py310
PY310_STAMP := $(PY310_VENV)/.installed

$(PY310_STAMP): pyproject.toml dev/pyproject.toml requirements/py310.txt
	@test -n "$(PYTHON310)" || { echo "compat-3.10 needs python3.10 (set PYTHON310=...)"; exit 1; }
	$(PYTHON310) -m venv $(PY310_VENV)
	$(PY310_VENV)/bin/$(PIP_INSTALL) -r requirements/py310.txt -e . -e ./dev
	touch $@

.PHONY: compat-3.10
compat-3.10: export DOOW_STRICT_SKIPS := 1
compat-3.10: $(PY310_STAMP)
	$(PY310_VENV)/bin/pytest -q -p no:cacheprovider tests/unit tests/delivery

test: lint types pytest sam-check compat-3.10

demo: $(STAMP)
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/$(PIP_INSTALL) -r requirements/bench.txt
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python bench/run.py $(BENCH_ARGS)

# The fault campaigns at full size, rewriting docs/reliability*.md (`make test` runs them
# small): about 6.5 min for Lambda, 2 min each for Vercel and Azure.
.PHONY: reliability
reliability: $(STAMP) $(VERCEL_STAMP) $(AZURE_STAMP)
	$(BIN)/python -m scripts.campaign.lambda_campaign --invocations 1000 --seed 1 --report docs/reliability.md
	$(BIN)/python -m scripts.campaign.vercel_campaign --requests 300 --seed 1 --report docs/reliability-vercel.md
	$(BIN)/python -m scripts.campaign.azure_campaign --invocations 300 --seed 1 --report docs/reliability-azure.md

# Re-pin every virtualenv's packages (requirements/*.in -> *.txt); review the diff.
.PHONY: lock
lock:
	scripts/lock.sh dev $(PYTHON) . ./dev
	scripts/lock.sh sam $(PYTHON)
	scripts/lock.sh vercel $(PYTHON312) .
	scripts/lock.sh azure $(PYTHON313) . ./dev
	scripts/lock.sh py310 $(PYTHON310) . ./dev
	scripts/lock.sh bench $(PYTHON)

clean:
	rm -rf $(VENV) .venv-* .mypy_cache .ruff_cache .pytest_cache .demo .bench .sam .aws-sam
