# Two commands do everything: `make run` (the bot, on SQLite) and `make test` (the suite).
# `make run` decides which: with any Slack variable set (in .env or the environment) it runs
# the bot in Slack, which names whatever else is missing; with none (a fresh clone) it starts
# the sandbox, the bot with a local Slack. `northstar run` itself never falls back.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	&& echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run sandbox test lint bench screenshots clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "North Star needs Python 3.11 or newer on PATH." >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(VENV)/.installed $@

run: $(VENV)/.installed
	@if $(BIN)/python -c 'import sys; from bot.settings import slack_variables_set as given; sys.exit(not given())'; then \
		$(BIN)/northstar db upgrade && exec $(BIN)/northstar run; \
	else \
		echo "make run: no Slack token in .env or the environment, so this is the sandbox (set them to run in your workspace: README, Create the Slack app)." >&2; \
		exec $(BIN)/northstar sandbox; \
	fi

sandbox: $(VENV)/.installed
	$(BIN)/northstar sandbox

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-dev
	$(BIN)/python -m tests.bench

# The README's pictures: the sandbox's browser tests, writing into docs/screenshots/ (a plain
# test run writes them to a temporary folder). Needs Chromium (apt-get install chromium).
screenshots: $(VENV)/.installed-dev
	@command -v "$${CHROMIUM:-chromium}" >/dev/null 2>&1 || { \
		echo "make screenshots needs Chromium: apt-get install chromium, or set CHROMIUM." >&2; \
		exit 2; }
	SANDBOX_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/sandbox/test_browser*.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
