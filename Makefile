# startrt: the two set-up commands are `make demo` and `make test`; both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: demo test lint typecheck unit unit-postgres bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m startrt.demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# The web tests again on PostgreSQL (same migrations); skipped, saying so, when none is reachable.
unit-postgres: $(STAMP)
	@if $(BIN)/python -c "import psycopg; psycopg.connect('$(POSTGRES_URL)', connect_timeout=3).close()" 2>/dev/null; then \
		echo "web tests on PostgreSQL ($(POSTGRES_URL))"; \
		STARTRT_DATABASE_URL=$(POSTGRES_URL) $(BIN)/pytest tests/web; \
	else \
		echo "PostgreSQL not reachable at $(POSTGRES_URL): the PostgreSQL run of tests/web is SKIPPED"; \
	fi

test: lint typecheck unit unit-postgres

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
