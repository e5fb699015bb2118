# SMS Hub. `make run` sets everything up and starts the hub; `make test` lints and runs the suite.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
BIN := $(VENV)/bin
SMSHUB_PORT ?= 8000
SIMULATOR_PORT ?= 8025
# Django 6 needs Python 3.12 or later: the first one found on PATH (or through pyenv) is used.
PYTHON ?= $(firstword $(foreach v,3.12 3.13 3.14,\
	$(shell python$(v) -c 'import sys; print(sys.executable)' 2>/dev/null) \
	$(shell PYENV_VERSION=$(v) python3 -c 'import sys; print(sys.executable)' 2>/dev/null)))

.PHONY: help install run run-prod test lint format lock clean

help:
	@echo "make run     set up (virtualenv, packages, database, demo data) and start the hub"
	@echo "make run-prod  the production layout on this machine (PostgreSQL, Redis, granian)"
	@echo "make test    lint and run the whole test suite"
	@echo "make format  format the code with ruff"
	@echo "make lock    refresh requirements.lock after changing pyproject.toml"

$(BIN)/.installed: pyproject.toml requirements.lock
	@test -n "$(PYTHON)" || { echo "Python 3.12 or later is needed (python3.12 on PATH)." >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $@

install: $(BIN)/.installed .env

# A development .env (git-ignored): debug on, a random secret key. Production writes its own.
.env:
	@printf '# Development settings, written by make. See .env.example for production.\nDEBUG=true\nSECRET_KEY=%s\n' \
		"$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "wrote .env (development settings)"

run: export DEBUG ?= 1
run: export PUBLIC_BASE_URL ?= http://127.0.0.1:$(SMSHUB_PORT)
run: export SIMULATOR_URL ?= http://127.0.0.1:$(SIMULATOR_PORT)
run: export SMSHUB_PORT := $(SMSHUB_PORT)
run: export SIMULATOR_PORT := $(SIMULATOR_PORT)
run: export PATH := $(CURDIR)/$(BIN):$(PATH)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py createcachetable
	$(BIN)/python manage.py seed_demo
	@echo
	@echo "  SMS Hub:  http://127.0.0.1:$(SMSHUB_PORT)/   (admin: http://127.0.0.1:$(SMSHUB_PORT)/admin/)"
	@echo "  Log in:   $${DEMO_USERNAME:-admin} / $${DEMO_PASSWORD:-smshub-demo}"
	@echo "  Ctrl-C stops web, worker, beat and simulator (a process that dies is restarted)."
	@echo
	$(BIN)/python -m smshub.devstack Procfile.dev

# The production layout on this machine (docs/deploy.md): granian, two Celery workers, beat and
# the simulator (deploy/Procfile.local), DEBUG off, JSON logs, against PostgreSQL and Redis on
# 127.0.0.1. Plain HTTP on loopback: the TLS-only settings a proxy would need are relaxed; the
# demo's known login is seeded (seed_demo runs with DEBUG on for that only). Keys made once are
# kept in var/run-prod.env.
PROD_ENV := var/run-prod.env
run-prod: export DEBUG := false
run-prod: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/smshub
run-prod: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/3
run-prod: export CACHE_URL ?= redis://127.0.0.1:6379/4
run-prod: export STATIC_ROOT ?= $(CURDIR)/var/staticfiles
run-prod: export WEB_BIND ?= 127.0.0.1:$(SMSHUB_PORT)
run-prod: export WEB_CONCURRENCY ?= 2
run-prod: export CELERY_WORKER_CONCURRENCY ?= 2
run-prod: export SECURE_SSL_REDIRECT ?= false
run-prod: export SESSION_COOKIE_SECURE ?= false
run-prod: export CSRF_COOKIE_SECURE ?= false
run-prod: export SECURE_HSTS_SECONDS ?= 0
run-prod: export PUBLIC_BASE_URL ?= http://127.0.0.1:$(SMSHUB_PORT)
run-prod: export SIMULATOR_URL ?= http://127.0.0.1:$(SIMULATOR_PORT)
run-prod: export SIMULATOR_PORT := $(SIMULATOR_PORT)
run-prod: export PATH := $(CURDIR)/$(BIN):$(PATH)
run-prod: install
	@mkdir -p var
	@test -f $(PROD_ENV) || { \
		echo "# Keys of make run-prod (this machine only), written by make."; \
		echo "SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')"; \
		echo "SMSHUB_ENCRYPTION_KEYS=$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"; \
		echo "SMSHUB_METRICS_TOKEN=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(24))')"; \
	} > $(PROD_ENV)
	@echo "  Database: $$DATABASE_URL"
	@echo "  Broker:   $$CELERY_BROKER_URL    Cache: $$CACHE_URL"
	@echo "  (PostgreSQL and Redis must be running there; set these variables to use others.)"
	set -a && . ./$(PROD_ENV) && set +a && \
	$(BIN)/python deploy/ensure_database.py && \
	$(BIN)/python manage.py collectstatic --noinput -v0 && \
	$(BIN)/python manage.py migrate --noinput && \
	DEBUG=true $(BIN)/python manage.py seed_demo && \
	echo && \
	echo "  SMS Hub:  http://127.0.0.1:$(SMSHUB_PORT)/   (admin: http://127.0.0.1:$(SMSHUB_PORT)/admin/)" && \
	echo "  Log in:   $${DEMO_USERNAME:-admin} / $${DEMO_PASSWORD:-smshub-demo}" && \
	echo "  Health:   http://127.0.0.1:$(SMSHUB_PORT)/readyz" && \
	echo "  Metrics:  curl -H \"Authorization: Bearer $$SMSHUB_METRICS_TOKEN\" http://127.0.0.1:$(SMSHUB_PORT)/metrics" && \
	echo "  Ctrl-C stops web (granian), 2 workers, beat and simulator." && \
	echo && \
	$(BIN)/honcho -f deploy/Procfile.local -d . -e $(PROD_ENV) start -c worker=2

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	CELERY_BROKER_URL=memory:// $(BIN)/python manage.py makemigrations --check --dry-run --settings=tests.settings
	$(BIN)/python -m pytest

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^smshub' > requirements.lock

clean:
	rm -rf $(VENV) var test-output
