# Backupchecks — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SRC := containers/backupchecks/src
export PYTHONPATH := $(CURDIR)/$(SRC)
FLASK := $(PY) -m flask --app backend.app
# Local data (pgdata/: the embedded PostgreSQL's when no database is configured); as the app finds it.
INSTANCE := $(or $(APP_INSTANCE_PATH),instance)
# The team's shared sample corpus beside the clone; `make check-parsers` checks it where it exists.
SHARED_SAMPLES := ../shared/samples/emails

.PHONY: run test test-fast audit bench-parsers bench-reports bench-import bench-pages bench-metrics soak check-parsers migrate \
	flask create-user import-mail import-eml parse clean clean-data

$(VENV)/.installed: containers/backupchecks/requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

## Run the app on http://127.0.0.1:8080 (APP_HOST, APP_PORT). Without DATABASE_URL/POSTGRES_* it starts
## the embedded PostgreSQL (requirements-dev.txt) with its data in instance/pgdata, kept across runs.
## Ctrl+C or SIGTERM stops it after the background loop's current step, then the embedded PostgreSQL.
run: $(VENV)/.installed
	$(PY) -m backend.app.main

## The whole suite. Database: TEST_DATABASE_URL, else local PostgreSQL (127.0.0.1:5432, user postgres)
## when it answers, else a throw-away embedded PostgreSQL for the run (BACKUPCHECKS_TEST_PG=embedded: always).
test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

## Known vulnerabilities in the pinned requirements (pip-audit; nothing is installed). A finding
## fails; a vulnerability service that can't be reached is reported and skipped (scripts/audit.sh).
audit: $(VENV)/.installed
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" scripts/audit.sh

test-fast: $(VENV)/.installed
	$(PY) -m pytest -n 2 -m "not browser and not slow" $(PYTEST_ARGS)

## Every sample against its expected.json: the shared corpus beside the clone (skipped with a message
## where it does not exist), then the repository's own samples.
check-parsers: $(VENV)/.installed
	@if [ -d "$(SHARED_SAMPLES)" ]; then \
		echo "$(PY) -m backend.app.parsers --check $(SHARED_SAMPLES)"; \
		$(PY) -m backend.app.parsers --check "$(SHARED_SAMPLES)"; \
	else \
		echo "Skipping the shared corpus: $(SHARED_SAMPLES) does not exist beside this clone (the team's checkouts have it); checking the repository's samples only."; \
	fi
	$(PY) -m backend.app.parsers --check tests/samples/emails
	$(PY) -m backend.app.parsers --check tests/parsers/samples

bench-parsers: $(VENV)/.installed
	$(PY) scripts/bench_parsers.py

## Mails per second through the whole pipeline (parse + store + runs) on PostgreSQL.
## BENCH_ARGS=--profile adds the statements per mail by kind and table and the top Python functions.
bench-import: $(VENV)/.installed
	$(PY) scripts/bench_import.py $(BENCH_ARGS)

## The morning pages at MSP size (300 customers / 3,000 jobs / ~1.07 M runs) beside a 10x smaller
## database, served by gunicorn as in production: p50/p95/max ms, KB and statements per page, the ratio
## and the goal per page (scripts/bench/pages.py; ~15 min; PostgreSQL on 127.0.0.1:5432; BENCH_KEEP=1
## keeps the two databases, BENCH_REUSE=1 reuses the ones seeded today).
bench-pages: $(VENV)/.installed
	$(PY) scripts/bench/pages.py

## What a Prometheus scrape of /metrics costs the database (scripts/bench_metrics.py; BENCH_ARGS=--runs 1000000).
bench-metrics: $(VENV)/.installed
	$(PY) scripts/bench_metrics.py $(BENCH_ARGS)

## A one-month PDF for 100 customers and 1,000 jobs on PostgreSQL.
bench-reports: $(VENV)/.installed
	$(PY) scripts/bench_reports.py

## A simulated week at high speed (scripts/soak.py; minutes, mostly the import): its own database (created and dropped,
## as the bench targets do), ~300 jobs for 50 customers, fake Graph delivering each day's mails, the
## background loops stepped on a simulated clock, an operator reviewing each morning; checks every mail,
## run, missed run, notification, digest, memory and retention and prints one line per check (exit 1
## on any failure). SOAK_DAYS (7), SOAK_MAILS_PER_DAY (3000), SOAK_JOBS (300), SOAK_KEEP=1. Not in `make test`.
soak: $(VENV)/.installed
	$(PY) scripts/soak.py

## The command line, against the same database as `make run`:
migrate: $(VENV)/.installed
	$(FLASK) db upgrade

## Any flask command: make flask ARGS="create-user alice --role admin"
flask: $(VENV)/.installed
	@$(FLASK) $(ARGS)

## Create a user (asks for the password), or reset an existing one: make create-user NAME=alice ROLES="admin operator"
create-user: $(VENV)/.installed
	@test -n "$(NAME)" && test -n "$(ROLES)" || { echo 'Usage: make create-user NAME=alice ROLES="admin operator"' >&2; exit 2; }
	@$(FLASK) create-user '$(NAME)' $(foreach role,$(ROLES),--role $(role))

## One mail import cycle from Microsoft Graph; prints the counts.
import-mail: $(VENV)/.installed
	@$(FLASK) import-mail $(ARGS)

## Import .eml files: make import-eml FILES="a.eml b.eml"
import-eml: $(VENV)/.installed
	@test -n "$(FILES)" || { echo 'Usage: make import-eml FILES="a.eml b.eml"' >&2; exit 2; }
	@$(FLASK) import-eml $(FILES)

## Parse mail files, one JSON object per file: make parse FILES="a.eml b.eml" (or ARGS="--check DIR")
parse: $(VENV)/.installed
	@test -n "$(FILES)$(ARGS)" || { echo 'Usage: make parse FILES="a.eml b.eml"  or  make parse ARGS="--check DIR"' >&2; exit 2; }
	@$(PY) -m backend.app.parsers $(ARGS) $(FILES)

## Remove the virtualenv and caches; keeps instance/ (the embedded PostgreSQL's data).
clean:
	rm -rf $(VENV) .pytest_cache

## Delete the local data (instance/: the embedded PostgreSQL's data). Asks first, so it needs a terminal,
## and refuses while the embedded PostgreSQL runs (stop `make run` first).
clean-data:
	@if [ ! -e "$(INSTANCE)" ]; then \
		echo "$(INSTANCE)/ does not exist; nothing to delete."; \
	elif [ -f "$(INSTANCE)/pgdata/postmaster.pid" ] && kill -0 "$$(head -n 1 "$(INSTANCE)/pgdata/postmaster.pid")" 2>/dev/null; then \
		echo "The embedded PostgreSQL still runs on $(INSTANCE)/pgdata (pid $$(head -n 1 "$(INSTANCE)/pgdata/postmaster.pid")): stop make run (Ctrl+C) first. Nothing was deleted." >&2; \
		exit 1; \
	elif [ ! -t 0 ]; then \
		echo "make clean-data asks before it deletes $(INSTANCE)/, but there is no terminal to ask on. Nothing was deleted." >&2; \
		exit 1; \
	else \
		printf 'Delete %s/ with the local database (users, jobs, runs, mails, settings)? This cannot be undone. [y/N] ' "$(INSTANCE)"; \
		read answer || answer=; \
		case "$$answer" in \
			[yY]|[yY][eE][sS]) rm -rf -- "$(INSTANCE)" && echo "Deleted $(INSTANCE)/.";; \
			*) echo "Nothing was deleted.";; \
		esac; \
	fi
