# Everything bootstraps .venv itself: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install chromium run test test-fast coverage lint format typecheck bench clean

help:
	@echo "make run        start a private Valkey, one worker and the web app on :8000"
	@echo "make test       install and run the whole test suite"
	@echo "make test-fast  the edit-and-test loop: unit and integration tests, no outages, processes or browser"
	@echo "make coverage   the whole suite under coverage (the processes it starts too)"
	@echo "make lint       ruff check + ruff format --check"
	@echo "make typecheck  mypy --strict on service/, worker_settings.py and tests/"
	@echo "make format     ruff format + ruff check --fix"
	@echo "make bench      benchmarks against the Celery tutorial stack and bare arq"

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,otel,testing]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m service run

# Browser tests drive Debian's Chromium (Playwright downloads no browser here); installed when missing and possible.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| { echo "The browser tests need Chromium: sudo apt-get install chromium"; exit 1; }

test: $(STAMP) chromium
	$(BIN)/python -m pytest

# No subprocesses, browser, outages or 100,000-job seeding: what to run after each edit.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/integration -m "not slow"

# The whole suite under coverage, the processes it starts included (pyproject.toml, [tool.coverage.run]); slower,
# so each test gets three minutes.
coverage: $(STAMP) chromium
	$(BIN)/python -m pytest --cov --cov-report=term --timeout 180

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy service worker_settings.py tests

# QUICK=1: one run of each, under two minutes. Needs wrk (apt-get install wrk).
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "make bench needs wrk: sudo apt-get install wrk"; exit 1; }
	$(BIN)/python -m bench.run $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
