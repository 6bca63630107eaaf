# cancelflow: make demo | make up | make test | make bench
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo up test bench chaos lint schema compose-config clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,local]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cancelflow demo

up: $(STAMP)
	$(VENV)/bin/cancelflow up

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) -m bench

chaos: $(STAMP)
	$(PY) -m chaos

# The producer message's JSON Schema in docs/, regenerated from the request model.
schema: $(STAMP)
	$(PY) -m worker.domain.request_schema

lint: $(STAMP)
	$(VENV)/bin/ruff check worker tasks webhooks sandbox devstack tests bench docs/examples
	$(VENV)/bin/mypy

# Validates docker-compose.yml without an engine (docker compose v2, else Debian's docker-compose):
# the production shape with .env.example, then the sandbox profile with .env.sandbox. The values
# on the first line stand in for the secrets those files leave to the operator.
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_CHECK = CANCELFLOW_API_TOKEN=compose-config-check-0123456789abcdef \
	POSTGRES_PASSWORD=compose-config-check FLOWER_BASIC_AUTH=check:check $(COMPOSE)

compose-config:
	$(COMPOSE_CHECK) --env-file .env.example config --quiet
	$(COMPOSE_CHECK) --env-file .env.sandbox --profile sandbox config --quiet

clean:
	rm -rf $(VENV) var
