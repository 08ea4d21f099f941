# Every target sets up what it needs: uv (from pip when absent), then `uv sync --frozen`.
PYTHON ?= python3
UV = $(shell if command -v uv >/dev/null 2>&1; then echo uv; else echo "$(PYTHON) -m uv"; fi)
VENV_PY := .venv/bin/python
PYTEST_ARGS ?=
# Tests run in two processes (pytest-xdist): most of the suite's wall time is tests waiting on
# servers, schedules and simulated minutes, so two of them share the 2 cores CI has. TEST_WORKERS=0
# runs them in this process, one after another.
TEST_WORKERS ?= 2

.PHONY: setup test demo dev lint format bench soak contract-extract clean

setup: .venv/.synced

.venv/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv \
		|| $(PYTHON) -m pip install --quiet --user uv \
		|| $(PYTHON) -m pip install --quiet --break-system-packages uv
	$(UV) sync --frozen
	@touch $@

test: setup
	$(VENV_PY) -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

demo: setup
	.venv/bin/termstore demo

dev: setup
	.venv/bin/termstore dev

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy backquant storage assets pipelines bench

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench: setup
	$(UV) sync --frozen --group bench
	$(VENV_PY) -m bench

soak: setup
	$(VENV_PY) -m pytest tests/reliability -m soak --override-ini="addopts=-ra" $(PYTEST_ARGS)

contract-extract: setup
	$(VENV_PY) tests/contract/extract_schemas.py

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache warehouse
