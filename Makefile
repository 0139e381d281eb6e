# Two commands: `make run` and `make test`. Both install what is missing first (as root on Debian).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
APT_PACKAGES := redis-server chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0
export DJANGO_SETTINGS_MODULE := config.settings

.PHONY: run test test-postgres postgres bench-postgres install apt venv node migrate seed lint check clean

install: apt venv node

# Debian packages: installed only when a command they provide is missing.
apt:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	ldconfig -p | grep -q 'libpangoft2-1.0.so.0' || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The virtualenv is rebuilt only when requirements.txt changes.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements.txt
	@touch $@

# Front-end assets from npm, served from the project's own static files.
node: node_modules/.installed
node_modules/.installed: package.json $(wildcard package-lock.json)
	@if [ -f package.json ]; then npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; fi
	@mkdir -p node_modules && touch $@

migrate: install
	@mkdir -p var
	$(PY) manage.py migrate --noinput -v0

seed: migrate
	$(PY) manage.py seed_findings
	$(PY) manage.py setup_demo

run: seed
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py setup_schedule --run-now
	$(VENV)/bin/honcho start -f Procfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

check: install
	@mkdir -p var  # the default SQLite database lives there; makemigrations opens it
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

# The suite runs in parallel processes (pytest-xdist), one per CPU up to four; each has its own test
# database, Redis and SMTP ports. `make test PYTEST_WORKERS=0` runs it in one process.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)

test: install lint check
	@mkdir -p var/test-artifacts
	$(VENV)/bin/pytest -q -n $(PYTEST_WORKERS)

# Debian's PostgreSQL server, only for test-postgres and bench-postgres (make run uses SQLite).
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "Installing Debian packages: postgresql"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	fi

# The whole suite again on a real PostgreSQL server: a throwaway cluster under var/, started for this
# run and removed afterwards, pass or fail (.ci/with-postgres). Worker processes get the same DATABASE_URL.
test-postgres: install postgres
	@mkdir -p var/test-artifacts
	.ci/with-postgres bash -c '$(PY) manage.py check --database default && $(PY) manage.py makemigrations --check --dry-run && $(VENV)/bin/pytest -q -n $(PYTEST_WORKERS)'

# Every script of bench/ on PostgreSQL, each on a fresh server: the reminder sweep and the API at 100,000
# recommendations, the pages (lists, search, dashboard) at BENCH_SIZES one size per server, the exports,
# the import and the board pack. `make bench-postgres BENCH_SIZES="10000 50000 100000"` for more.
BENCH_SIZES ?= 10000 50000
bench-postgres: install postgres
	.ci/with-postgres bash -c 'BENCH_DATABASE_URL=$$DATABASE_URL $(PY) bench/reminders.py'
	.ci/with-postgres bash -c 'BENCH_DATABASE_URL=$$DATABASE_URL $(PY) bench/api.py --rows 100000'
	for n in $(BENCH_SIZES); do \
		.ci/with-postgres bash -c "BENCH_DATABASE_URL=\$$DATABASE_URL $(PY) bench/pages.py --n $$n" || exit 1; \
	done
	.ci/with-postgres bash -c 'BENCH_DATABASE_URL=$$DATABASE_URL $(PY) bench/exports.py --rows $(BENCH_SIZES)'
	.ci/with-postgres bash -c 'BENCH_DATABASE_URL=$$DATABASE_URL $(PY) bench/imports.py --rows 1000 10000'
	.ci/with-postgres bash -c 'BENCH_DATABASE_URL=$$DATABASE_URL $(PY) bench/boardpack.py --recs 500'

clean:
	rm -rf var/test-artifacts var/mail
