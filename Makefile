# Backupchecks — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SRC := containers/backupchecks/src
export PYTHONPATH := $(CURDIR)/$(SRC)

.PHONY: run test test-fast bench-parsers bench-reports bench-import check-parsers migrate clean

$(VENV)/.installed: containers/backupchecks/requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

## Run the app on http://127.0.0.1:8080 (or APP_PORT); SQLite unless database settings are given.
run: $(VENV)/.installed
	$(PY) -m backend.app.main

## The whole suite. Database: TEST_DATABASE_URL, else local PostgreSQL (127.0.0.1:5432, user postgres),
## else SQLite with a warning; with CI=true PostgreSQL is required.
test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-fast: $(VENV)/.installed
	$(PY) -m pytest -n 2 -m "not browser and not slow" $(PYTEST_ARGS)

check-parsers: $(VENV)/.installed
	$(PY) -m backend.app.parsers --check ../shared/samples/emails
	$(PY) -m backend.app.parsers --check tests/parsers/samples

bench-parsers: $(VENV)/.installed
	$(PY) scripts/bench_parsers.py

## Mails per second through the whole pipeline (parse + store + runs) on PostgreSQL.
bench-import: $(VENV)/.installed
	$(PY) scripts/bench_import.py

## A one-month PDF for 100 customers and 1,000 jobs on PostgreSQL.
bench-reports: $(VENV)/.installed
	$(PY) scripts/bench_reports.py

migrate: $(VENV)/.installed
	$(VENV)/bin/flask --app backend.app db upgrade

clean:
	rm -rf $(VENV) .pytest_cache instance
