# The two commands of the README. Each sets up what is missing first: a
# Python 3.11 (from Debian when root), the virtualenv in .venv, the pinned
# packages. A second run finds them in place and goes straight to its work.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

# Bazel-built tools run with the Python on PATH: the project's.
WITH_VENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

.PHONY: test demo bench clean bazel-tool

# The suite (which also runs the Bazel-built tool on contrib's checkpoint).
test: $(INSTALLED) bazel-tool
	$(PY) -m pytest -q

# contrib's tool built by Bazel, run on contrib's checkpoint.
bazel-tool: $(INSTALLED)
	@command -v bazel >/dev/null 2>&1 || { \
	  [ "$$(id -u)" = 0 ] && apt-get update -q && \
	  apt-get install -y -q bazel-bootstrap; } || { \
	  echo "make: bazel is missing; install it (Debian: apt-get install bazel-bootstrap)" >&2; exit 2; }
	$(WITH_VENV) bazel build -c opt //tools:strip_pruning_vars
	$(WITH_VENV) bazel-bin/tools/strip_pruning_vars \
	  --checkpoint_dir=tests/data/contrib_r115/conv \
	  --output_node_names=probabilities --output_dir=build/bazel_tool

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
	rm -rf $(VENV) .pytest_cache .hypothesis tf_prune.egg-info build
	-bazel clean --expunge
