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
	$(BIN)/pytest --ignore=tests/sam_local $(PYTEST_ARGS)

# cfn-lint (which weighs both values of every condition), the project's own checks (cfn-lint
# misses a bad Runtime or Timeout on SAM functions; the forwarder switch), the example built
# by `sam build` as its README says, then run (example-lambda below), with the forwarder on
# (the template's default), and `sam build` with it off; this package comes from a local
# wheel (not yet on PyPI).
SAM_BUILD = PATH="$(dir $(PYTHON312)):$$PATH" PIP_FIND_LINKS="$(CURDIR)/.sam/wheels $${PIP_FIND_LINKS:-}" \
	$(SAM_VENV)/bin/sam build --template-file template.yaml --cache-dir .sam/cache
sam-check: $(STAMP) $(SAM_STAMP) example-lambda
	@test -n "$(PYTHON312)" || { echo "sam-check needs python3.12 (set PYTHON312=...)"; exit 1; }
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(BIN)/python scripts/check_template.py template.yaml
	test -f .aws-sam/build/DoowForwarderFunction/doow_serverless/forwarders/aws.py
	rm -rf .sam/wheels .sam/build-off
	$(BIN)/python -m pip wheel -q --disable-pip-version-check --no-deps -w .sam/wheels .
	$(SAM_BUILD) --build-dir .sam/build-off --parameter-overrides DoowForwarder=false
	test -f .sam/build-off/DoowExampleFunction/doow_serverless/aws_lambda/__init__.py

# SAM local testing for real: `sam local invoke` and `start-api` of what `sam build` made,
# under the emulator SAM ships, in containers of Debian's podman, against a collector here.
# sam-local-setup installs and configures podman and builds the Lambda-like python3.12 image
# (Debian-based, not Amazon Linux): about 35 s the first time, under a second after. As root.
.PHONY: sam-local-setup sam-local
sam-local-setup:
	PYTHON312="$(PYTHON312)" scripts/sam-local.sh prepare

sam-local: export DOOW_STRICT_SKIPS := 1
sam-local: export DOOW_SAM_LOCAL_REQUIRED := 1
sam-local: export DOOW_SAM := $(CURDIR)/$(SAM_VENV)/bin/sam
sam-local: sam-check sam-local-setup
	scripts/sam-local.sh run $(BIN)/pytest -p no:cacheprovider tests/sam_local

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

# The examples, built with their platforms' own tools exactly as their READMEs say (the block
# after `<!-- build`), then run as built under the real runtimes by scripts/examples: the
# `sam build` output under the runtime client alone, Vercel's .func folder under a bare
# Python 3.12, the Azure deployment package under the library workers alone. Each fails on
# any build error, a missing file, or the artefact not serving a request whose event arrives
# once. The pytest tests then run the same artefacts further.
export PYTHON312 PYTHON313
export VERCEL_TELEMETRY_DISABLED := 1
export NO_UPDATE_NOTIFIER := 1
CHECK_EXAMPLE = $(BIN)/python -m scripts.examples

# The Vercel CLI, exactly as requirements/vercel-cli/package-lock.json pins it (npm ci into
# .tools, install scripts off: the Python builder needs none). uv comes with .venv-vercel.
VERCEL_CLI := .tools/vercel-cli
VERCEL_CLI_STAMP := $(VERCEL_CLI)/.installed
$(VERCEL_CLI_STAMP): requirements/vercel-cli/package.json requirements/vercel-cli/package-lock.json
	rm -rf $(VERCEL_CLI) && mkdir -p $(VERCEL_CLI)
	cp requirements/vercel-cli/package.json requirements/vercel-cli/package-lock.json $(VERCEL_CLI)/
	cd $(VERCEL_CLI) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# Lambda's python3.12 runtime as the function meets it: the runtime client and nothing else.
LAMBDA_VENV := .venv-lambda
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed
$(LAMBDA_STAMP): requirements/lambda.txt
	@test -n "$(PYTHON312)" || { echo "the Lambda runtime venv needs python3.12 (set PYTHON312=...)"; exit 1; }
	$(PYTHON312) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/$(PIP_INSTALL) -r requirements/lambda.txt
	touch $@

# Azure's Python 3.13 worker as a package meets it: the library workers and nothing else.
AZURE_WORKER_VENV := .venv-azure-worker
AZURE_WORKER_STAMP := $(AZURE_WORKER_VENV)/.installed
$(AZURE_WORKER_STAMP): requirements/azure-worker.txt
	@test -n "$(PYTHON313)" || { echo "the Azure worker venv needs python3.13 (set PYTHON313=...)"; exit 1; }
	$(PYTHON313) -m venv $(AZURE_WORKER_VENV)
	$(AZURE_WORKER_VENV)/bin/$(PIP_INSTALL) -r requirements/azure-worker.txt
	touch $@

.PHONY: examples example-lambda example-vercel example-azure example-tools
example-tools: $(STAMP) $(SAM_STAMP) $(LAMBDA_STAMP) $(VERCEL_STAMP) $(VERCEL_CLI_STAMP) $(AZURE_WORKER_STAMP)
example-lambda: $(STAMP) $(SAM_STAMP) $(LAMBDA_STAMP)
	$(CHECK_EXAMPLE) lambda
example-vercel: $(STAMP) $(VERCEL_STAMP) $(VERCEL_CLI_STAMP)
	$(CHECK_EXAMPLE) vercel
example-azure: $(STAMP) $(AZURE_WORKER_STAMP)
	$(CHECK_EXAMPLE) azure
examples: example-lambda example-vercel example-azure
# The tests of the checks themselves build broken copies of the examples with the same tools.
pytest: example-tools

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

# The examples are built and checked before pytest, whose tests run what they built.
test: export DOOW_EXAMPLES_BUILT := 1
test: lint types sam-check examples pytest sam-local compat-3.10

demo: $(STAMP)
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/$(PIP_INSTALL) -r requirements/bench.txt
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/python bench/run.py $(BENCH_ARGS)

# The fault campaigns at full size, rewriting docs/reliability*.md (`make test` runs them
# small): the Lambda campaign in each delivery mode and the Managed Instances one each write
# their section of docs/reliability.md; then Vercel and Azure (about 7 min each).
.PHONY: reliability
reliability: $(STAMP) $(VERCEL_STAMP) $(AZURE_STAMP)
	$(BIN)/python -m scripts.campaign.lambda_campaign --invocations 1000 --seed 1 --delivery sync --report docs/reliability.md
	$(BIN)/python -m scripts.campaign.lambda_campaign --invocations 1000 --seed 1 --delivery after-response --report docs/reliability.md
	$(BIN)/python -m scripts.campaign.managed_campaign --invocations 1000 --workers 4 --seed 1 --report docs/reliability.md
	$(BIN)/python -m scripts.campaign.vercel_campaign --requests 1000 --seed 1 --report docs/reliability-vercel.md
	$(BIN)/python -m scripts.campaign.azure_campaign --invocations 1000 --seed 1 --report docs/reliability-azure.md

# Re-pin every virtualenv's packages (requirements/*.in -> *.txt); review the diff.
.PHONY: lock
lock:
	scripts/lock.sh dev $(PYTHON) . ./dev
	scripts/lock.sh sam $(PYTHON)
	scripts/lock.sh vercel $(PYTHON312) .
	scripts/lock.sh azure $(PYTHON313) . ./dev
	scripts/lock.sh py310 $(PYTHON310) . ./dev
	scripts/lock.sh bench $(PYTHON)
	scripts/lock.sh lambda $(PYTHON312)
	scripts/lock.sh azure-worker $(PYTHON313)
	cd requirements/vercel-cli && npm install --package-lock-only --ignore-scripts --no-audit --no-fund

clean:
	rm -rf $(VENV) .venv-* .mypy_cache .ruff_cache .pytest_cache .demo .bench .sam .aws-sam .tools dist
	rm -rf examples/vercel/.vercel examples/vercel/uv.lock examples/azure/build
