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

# mosquitto and influxd are Debian packages; we start private instances, never the system's.
services:
	@command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto && command -v influxd >/dev/null 2>&1 || { \
	  echo "installing mosquitto and influxdb from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto influxdb >/dev/null; }

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
