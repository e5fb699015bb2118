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

.PHONY: help install run test lint format lock clean

help:
	@echo "make run     set up (virtualenv, packages, database, demo data) and start the hub"
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
	@echo "  Ctrl-C stops web, worker, beat and simulator."
	@echo
	$(BIN)/honcho -f Procfile.dev start

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=tests.settings
	$(BIN)/python -m pytest

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^smshub' > requirements.lock

clean:
	rm -rf $(VENV) var test-output
