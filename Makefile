# The two commands of the README: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where `make run` serves: make run PORT=8080
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck check demo clean messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/shouhou demo --db var/demo.db --fresh
	$(BIN)/shouhou serve --db var/demo.db --demo-keys --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

# Re-extract the marked strings and the domain's words into the template, then add what is new
# to each language's catalog (translate the empty msgstr lines; the tests refuse a gap).
LOCALE := src/shouhou/locale
messages: $(STAMP)
	PYTHONPATH=src $(BIN)/pybabel extract -F babel.cfg -o $(LOCALE)/messages.pot \
	  --project=shouhou --no-wrap --sort-by-file --add-comments=TRANSLATORS: .
	$(BIN)/pybabel update -i $(LOCALE)/messages.pot -d $(LOCALE) -D shouhou --no-wrap \
	  --no-fuzzy-matching --ignore-obsolete

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
