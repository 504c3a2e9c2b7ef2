# Two commands that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/scorefield demo --out demo-out

# Bytecode caches on for the tests even where the environment turns them off
# (PYTHONDONTWRITEBYTECODE): without them every pytest worker recompiles the package and the
# tests (jaxtyping's hook and pytest's assertion rewriting keep their own caches) and every CLI
# process a test starts recompiles scorefield: 23 s against 9.6 s to collect, 0.55 s per process.
test: export PYTHONDONTWRITEBYTECODE :=
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	SCOREFIELD_TEST_XLA=quick $(BIN)/python -m pytest -n 2 --dist loadfile -m "not xla_default"
	$(BIN)/python -m pytest -n 2 --dist load -m xla_default

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo-out
