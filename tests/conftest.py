"""Shared test helpers: quiet TensorFlow, golden-vector loading, paths."""

import json
import os
import pathlib
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).parent.parent
GOLDEN_DIR = ROOT / 'tests' / 'data' / 'contrib_r115'
# The examples' shared module (`support`), importable as the examples
# import it.
sys.path.insert(0, str(ROOT / 'examples'))


def project_env():
    """The environment for a subprocess that imports tf_prune from ROOT."""
    return dict(os.environ, PYTHONPATH=str(ROOT))


def load_golden(name):
    """Reads one of contrib's golden files (see data/contrib_r115/README.md)."""
    with open(GOLDEN_DIR / name) as f:
        return json.load(f)


@pytest.fixture(scope='session')
def golden():
    return load_golden


# The slowest test files, started first: `make test` runs two workers, a
# file to each at a time (`--dist loadfile`), and a long file started last
# would leave the other worker idle at the end.
_SLOW_FILES = ('test_docs.py', 'examples/test_examples.py',
               'examples/test_fashion_mnist_channels.py',
               'examples/test_tfmot_examples.py',
               'structured/test_applications.py')


def pytest_collection_modifyitems(items):
    def rank(item):
        # By the path's end: Bazel runs the tests from its runfiles tree.
        path = item.path.as_posix()
        return next((index for index, name in enumerate(_SLOW_FILES)
                     if path.endswith(f'/tests/{name}')), len(_SLOW_FILES))

    items.sort(key=rank)
