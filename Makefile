# Two commands for a fresh machine:  `make run`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
PYTHON ?= python3

.PHONY: install run test bench translations

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

install: $(VENV)/.installed

## make run: migrate, seed demo data into an empty database, start web + worker + dispatcher + sandbox
## (crashed processes are restarted; Ctrl-C stops all)
run: install
	$(FLASK) db upgrade
	$(FLASK) seed
	$(FLASK) serve

## make test: the whole suite (set DATABASE_URL / REDIS_URL to use PostgreSQL and Redis)
test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

## make bench: benchmarks that print figures and ratios (see bench/README.md)
bench: install
	$(PY) bench/table_page.py
	$(PY) bench/sync_tasks.py
	$(PY) bench/export_memory.py

## make translations: re-extract and compile the English catalogue
translations: install
	$(VENV)/bin/pybabel extract -F babel.cfg --ignore-dirs=".*" -k _ -k Column:2 -k Filter:2 -k Action:2 -o translations/messages.pot .
	$(VENV)/bin/pybabel update -i translations/messages.pot -d translations
	$(VENV)/bin/pybabel compile -d translations
