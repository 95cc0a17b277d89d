# The two commands of the README. Each sets up what is missing first: a
# Python 3.11 (from Debian when root), the virtualenv in .venv, the pinned
# packages, Fashion-MNIST (Debian's dataset-fashion-mnist when root). A second
# run finds them in place and goes straight to its work.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.bench-installed
DATA_DIR := /usr/share/datasets/fashion-mnist
DEMO_DIR := build/demo
DEMO_HPARAMS := name=fashion_mnist_pruning,target_sparsity=0.9,pruning_frequency=100,sparsity_function_end_step=1900

# Bazel-built tools run with the Python on PATH: the project's.
WITH_VENV := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"

.PHONY: test demo bench clean bazel-tool data

# The suite (which also runs the Bazel-built tool on contrib's checkpoint),
# in two processes, a test file to each at a time (module fixtures run once).
test: $(INSTALLED) data bazel-tool
	$(PY) -m pytest -q -n 2 --dist loadfile

# contrib's tool built by Bazel, run on contrib's checkpoint.
bazel-tool: $(INSTALLED)
	@command -v bazel >/dev/null 2>&1 || { \
	  [ "$$(id -u)" = 0 ] && apt-get update -q && \
	  apt-get install -y -q bazel-bootstrap; } || { \
	  echo "make: bazel is missing; install it (Debian: apt-get install bazel-bootstrap)" >&2; exit 2; }
	$(WITH_VENV) bazel build //tools:strip_pruning_vars
	$(WITH_VENV) bazel-bin/tools/strip_pruning_vars \
	  --checkpoint_dir=tests/data/contrib_r115/conv \
	  --output_node_names=probabilities --output_dir=build/bazel_tool

# Fashion-MNIST, as the examples read it.
data:
	@[ -f $(DATA_DIR)/train-images-idx3-ubyte.gz ] || { \
	  [ "$$(id -u)" = 0 ] && apt-get update -q && \
	  apt-get install -y -q dataset-fashion-mnist; } || { \
	  echo "make: Fashion-MNIST is missing from $(DATA_DIR); install it (Debian: apt-get install dataset-fashion-mnist)" >&2; exit 2; }

# The CNN example pruned to 90%, its training directory stripped to a sparse
# TFLite file by contrib's tool, and that file's zeros counted. A second run
# finds the models trained and only strips and counts again.
demo: $(INSTALLED) data
	$(PY) examples/fashion_mnist_cnn.py --train_dir=$(DEMO_DIR)/train \
	  --pruning_hparams=$(DEMO_HPARAMS) --epochs=6 --batch_size=128
	$(PY) tools/strip_pruning_vars.py --checkpoint_dir=$(DEMO_DIR)/train \
	  --output_format=tflite --output_dir=$(DEMO_DIR)/stripped
	$(PY) tools/inspect_sparsity.py $(DEMO_DIR)/stripped/pruning_stripped.tflite
	@echo
	@echo "TensorBoard logs: $(CURDIR)/$(DEMO_DIR)/train"
	@echo "Open the dashboard (Pruning charts under CUSTOM SCALARS):"
	@echo "  $(VENV)/bin/tensorboard --logdir $(DEMO_DIR)/train"

# tfmot, for the benchmarks only (see benchmarks/requirements.txt).
$(BENCH_INSTALLED): benchmarks/requirements.txt $(INSTALLED)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r benchmarks/requirements.txt
	touch $@

bench: $(INSTALLED) $(BENCH_INSTALLED) data
	$(PY) benchmarks/mask_update.py
	$(PY) benchmarks/train_overhead.py
	$(PY) benchmarks/fashion_mnist_vs_tfmot.py
	$(PY) benchmarks/structured_speed.py
	$(PY) benchmarks/sensitivity.py
	$(PY) benchmarks/channel_criteria.py
	$(PY) benchmarks/render_docs.py

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
