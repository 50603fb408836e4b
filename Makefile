# capmon: `make run` runs every role on the embedded default (no Kafka, SQLite ./capmon.db);
# `make test` runs the whole suite against real Kafka and PostgreSQL (started for it).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install run demo test lint services services-down bench clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/capmon db upgrade
	$(BIN)/capmon run

# The 2022 heat wave replayed through every role into local sinks (docs/demo.md).
demo: install
	$(BIN)/capmon demo $(DEMO_ARGS)

services: install
	deploy/services up

services-down:
	deploy/services down

test: install services
	. .cache/services.env && $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy monitor consumers producers

bench: install services
	. .cache/services.env && for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache capmon.db*
