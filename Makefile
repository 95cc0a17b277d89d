# The two commands of the README. Each sets up what is missing first: a
# Python 3.11 (from Debian when root), the virtualenv in .venv, the pinned
# packages. A second run finds them in place and goes straight to its work.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: test demo bench clean

test: $(INSTALLED)
	$(PY) -m pytest -q

demo: $(INSTALLED)
	$(PY) examples/mask_engine_demo.py

bench: $(INSTALLED)
	$(PY) benchmarks/mask_update.py
	$(PY) benchmarks/train_overhead.py

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  [ "$$(id -u)" = 0 ] && apt-get update -q && \
	  apt-get install -y -q python3.11 python3.11-venv; } || { \
	  echo "make: $(PYTHON) is missing; install Python 3.11 (Debian: apt-get install python3.11 python3.11-venv)" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when the pins change.
$(INSTALLED): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis tf_prune.egg-info
