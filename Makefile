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

# The English catalogue: the compiled .mo is committed and rebuilt whenever the .po is newer,
# so `make run` and `make test` (and CI through it) always serve what the .po says.
PO := translations/en/LC_MESSAGES/messages.po
MO := translations/en/LC_MESSAGES/messages.mo
$(MO): $(PO) $(VENV)/.installed
	$(VENV)/bin/pybabel compile -d translations

install: $(VENV)/.installed $(MO)

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
	$(PY) bench/lists.py $(BENCH_ARGS)
	$(PY) bench/export_memory.py

## make translations: re-extract and compile the English catalogue (then translate every new
## msgid in the .po: tests/test_english.py fails on an empty or fuzzy one)
## keywords: _ / gettext (request time), _l / lazy_gettext (import time), N_ (marked only),
## the labels of Column/Filter/Action (their 2nd argument, made lazy in portal/tables.py)
translations: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -F babel.cfg --ignore-dirs=".*" --sort-by-file --omit-header \
		-k _ -k gettext -k _l -k lazy_gettext -k N_ -k Column:2 -k Filter:2 -k Action:2 \
		-o translations/messages.pot .
	$(VENV)/bin/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching --ignore-obsolete
	$(VENV)/bin/pybabel compile -d translations
