# One entry point for developers. `make demo` and `make test` do all set-up on a fresh machine.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PYTEST_ARGS ?=
# the suite runs in parallel processes, each with databases of its own; many tests wait on a database,
# a browser or a subprocess, so one more process than cores keeps both cores busy
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

.PHONY: install demo serve test test-fast lint format bench migration clean

$(STAMP): pyproject.toml
	@test -n "$(PY)" || { echo "Python 3.11 is needed (python3.11 not found)"; exit 1; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## Build the demo brand into an embedded SQLite file and serve it on http://127.0.0.1:8000
demo: install
	$(BIN)/siyu demo

serve: install
	$(BIN)/siyu serve

## The whole suite: SQLite always, PostgreSQL when reachable, browser tests when chromium is installed.
## Ends by saying what was skipped and why.
test: install
	@rm -f .pytest_skips; status=0; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/python scripts/skip_report.py .pytest_skips; \
	exit $$status

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser" -x -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy src/siyu
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix src tests bench scripts
	$(BIN)/ruff format src tests bench scripts

bench: install
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_lookup.py
	$(BIN)/python bench/bench_clv.py

## make migration m="add tags"
migration: install
	$(BIN)/python scripts/new_migration.py "$(m)"

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .pytest_skips
