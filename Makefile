# Two entry points (see README): `make dashboard` and `make test`.
# Both create .venv with Python 3.11 and install requirements; `make test` also installs the
# system packages the browser and PDF tests need (Debian/Ubuntu: chromium, poppler-utils).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_PACKAGES := chromium poppler-utils libharfbuzz-subset0 openjdk-17-jre-headless

.PHONY: venv system-deps dashboard test bench

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

system-deps:
	@if ! command -v chromium >/dev/null || ! command -v pdftotext >/dev/null || ! command -v java >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(SYSTEM_PACKAGES); \
	fi

dashboard: venv system-deps
	$(PY) tools/warm_dashboard.py http://127.0.0.1:$(PORT) &
	$(PY) -m streamlit run app.py --server.headless true --server.port $(PORT)

test: venv system-deps
	$(PY) -m pytest -n 2 --dist loadgroup -q --durations=25

bench: venv
	$(PY) -m bench
