# Pathways — `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
PYBABEL := PYTHONPATH=. $(VENV)/bin/pybabel
# PostgreSQL used by `make test` for the second run (CI sets REQUIRE_POSTGRES=1).
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
LOCALES := es pl uk
PO_FILES := $(foreach l,$(LOCALES),translations/$(l)/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

.PHONY: run test test-sqlite test-postgres install lint format i18n i18n-extract i18n-update i18n-compile clean studio-assets browser serve

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(VENV)/.installed $(MO_FILES)

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po $(VENV)/.installed
	$(PYBABEL) compile --use-fuzzy -i $< -o $@ -l $*

run: install
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	@echo "Starting the SMS worker and the web server (Ctrl+C stops both)"
	$(FLASK) worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
		$(FLASK) run --host 127.0.0.1 --port 5000

# Production: the migrations, then gunicorn with app/gunicorn_conf.py (settings from the
# environment; see "Production" in the README). Run the background workers beside it: N copies
# of `flask --app wsgi worker`.
serve: install
	$(FLASK) db upgrade
	exec $(VENV)/bin/gunicorn -c python:app.gunicorn_conf wsgi:app

test: install
	$(MAKE) --no-print-directory test-sqlite
	@if $(PY) -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$(TEST_DATABASE_URL)" 2>/dev/null; then \
		$(MAKE) --no-print-directory test-postgres; \
	elif [ -n "$$REQUIRE_POSTGRES" ]; then \
		echo "ERROR: PostgreSQL at $(TEST_DATABASE_URL) is not reachable (REQUIRE_POSTGRES is set)"; exit 1; \
	else \
		echo; echo "*** PostgreSQL run SKIPPED: nothing reachable at $(TEST_DATABASE_URL). Only the SQLite suite ran. ***"; \
	fi

test-sqlite: install
	@echo "== test suite on SQLite =="
	env -u TEST_DATABASE_URL $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: install
	@echo "== test suite on PostgreSQL ($(TEST_DATABASE_URL)) =="
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format .

i18n: i18n-extract i18n-update i18n-compile

i18n-extract: install
	$(PYBABEL) extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output -o translations/messages.pot .

i18n-update: install
	$(PYBABEL) update -i translations/messages.pot -d translations --no-fuzzy-matching --ignore-obsolete

i18n-compile: install
	$(PYBABEL) compile --use-fuzzy -d translations

clean:
	rm -rf $(VENV) .pytest_cache

# The pathway editor's bpmn-js and dmn-js, pinned in app/studio/assets/package-lock.json and
# copied into app/studio/static/vendor/ (committed: `make run` needs no node and works offline).
STUDIO_NODE := app/studio/assets/node_modules
STUDIO_VENDOR := app/studio/static/vendor
studio-assets:
	cd app/studio/assets && npm ci --ignore-scripts --no-audit --no-fund
	rm -rf $(STUDIO_VENDOR)
	mkdir -p $(STUDIO_VENDOR)/bpmn-js $(STUDIO_VENDOR)/dmn-js
	cp $(STUDIO_NODE)/bpmn-js/dist/bpmn-modeler.production.min.js $(STUDIO_NODE)/bpmn-js/LICENSE $(STUDIO_VENDOR)/bpmn-js/
	cp -R $(STUDIO_NODE)/bpmn-js/dist/assets $(STUDIO_VENDOR)/bpmn-js/assets
	cp $(STUDIO_NODE)/dmn-js/dist/dmn-modeler.production.min.js $(STUDIO_NODE)/dmn-js/LICENSE $(STUDIO_VENDOR)/dmn-js/
	cp -R $(STUDIO_NODE)/dmn-js/dist/assets $(STUDIO_VENDOR)/dmn-js/assets
	cd app/studio/assets && node -p '"bpmn-js " + require("./node_modules/bpmn-js/package.json").version + "\ndmn-js " + require("./node_modules/dmn-js/package.json").version' > ../static/vendor/VERSIONS

# Debian's Chromium for the browser tests (tests/studio/test_editor_browser.py).
browser:
	@if [ -x /usr/bin/chromium ]; then \
		echo "Chromium is installed: /usr/bin/chromium"; \
	elif [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	else \
		echo "Chromium is missing and this is not root. Install it with:"; \
		echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium"; \
		echo "(without it the browser tests are skipped, unless REQUIRE_BROWSER is set)"; \
	fi

# Benchmarks (bench/README.md): every figure on SQLite, then on PostgreSQL at BENCH_DATABASE_URL
# when one answers there (its public schema is dropped and recreated, as by the tests); one
# table, also written to bench/RESULTS.md.
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
.PHONY: bench
bench: install
	$(PY) -m bench.run_all --write --postgres "$(BENCH_DATABASE_URL)"
