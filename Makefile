# The two commands of the README. Both set everything up on a fresh Debian machine (as root).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint services clean

demo: $(STAMP) services
	$(VENV)/bin/coldchain demo $(DEMO_ARGS)

test: $(STAMP) services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Debian packages the demo and the tests use, as command:package. mosquitto and influxd are started
# as private instances on free ports, never the system's; openssl makes test certificates;
# systemd-analyze checks the units; chromium runs the board's browser tests; poppler-utils reads reports;
# nats-server runs the fleet deployment's three-node cluster (private, on free ports, never the system's).
APT_NEEDS := mosquitto:mosquitto mosquitto_pub:mosquitto-clients influxd:influxdb openssl:openssl \
	systemd-analyze:systemd chromium:chromium pdftotext:poppler-utils nats-server:nats-server

services:
	@missing=""; for need in $(APT_NEEDS); do \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $${need%%:*} >/dev/null 2>&1 || missing="$$missing $${need##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
