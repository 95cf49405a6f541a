# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Development settings for `make run`: the local LaunchDarkly sandbox stands in for LaunchDarkly.
SANDBOX_URL := http://127.0.0.1:8765
# The Procfile names gunicorn, celery and python: the venv's come first on PATH.
RUN_ENV := PATH="$(CURDIR)/$(BIN):$$PATH" \
           LAUNCHDARKLY_BASE_URL=$(SANDBOX_URL) LAUNCHDARKLY_EVENTS_URL=$(SANDBOX_URL) \
           PUBLIC_URL=http://127.0.0.1:8000

.PHONY: install browser run test lint bench clean

# Quiet: the install's output goes to a log, shown only if the install fails.
$(STAMP): pyproject.toml
	@echo "Installing the connector and its dependencies into $(VENV) (the first time takes a minute)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --upgrade pip > $(VENV)/install.log 2>&1 && \
	  $(BIN)/pip install --quiet -e ".[dev,sandbox]" >> $(VENV)/install.log 2>&1 || \
	  { tail -n 40 $(VENV)/install.log; echo "The install failed: the whole log is $(VENV)/install.log"; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Browser tests drive Debian's chromium (playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Only warnings and errors from the processes; `make run LOG=info` shows every request.
LOG ?= warning
run: install
	@$(RUN_ENV) $(BIN)/python manage.py migrate --noinput -v 0
	@$(RUN_ENV) $(BIN)/python manage.py seed_demo
	@echo "Starting the web server, a worker, beat and the LaunchDarkly sandbox"
	@$(RUN_ENV) LOG_LEVEL=$(shell echo $(LOG) | tr a-z A-Z) LOG_FORMAT=plain PYTHONWARNINGS=ignore \
	  $(BIN)/honcho -f Procfile.dev start

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy connector tenants sandbox

test: install browser lint
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf var staticfiles .pytest_cache
