# cancelflow: make demo | make up | make test | make bench
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo up test bench chaos lint compose-config clean

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

lint: $(STAMP)
	$(VENV)/bin/ruff check worker tasks webhooks sandbox tests bench
	$(VENV)/bin/mypy

# Validates docker-compose.yml without an engine (docker compose v2, or Debian's docker-compose).
compose-config:
	CANCELFLOW_API_TOKEN=check docker compose config --quiet 2>/dev/null \
	  || CANCELFLOW_API_TOKEN=check docker-compose config -q

clean:
	rm -rf $(VENV) var
