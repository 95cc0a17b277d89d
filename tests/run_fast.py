"""The fast tests (no model training, no subprocess), for `bazel test`.

    bazel test //tests:fast
"""

import os
import sys

import pytest

FAST = ['core/test_hparams.py', 'core/test_schedule.py',
        'core/test_masking.py', 'core/test_flags.py', 'core/test_atomic.py',
        'export/test_tf1_graph.py', 'examples/test_support.py',
        'test_layout.py']

if __name__ == '__main__':
    here = os.path.dirname(os.path.abspath(__file__))
    # Python put this script's real directory first on the path, where the
    # test package `tests/keras` would stand for Keras itself; pytest finds
    # the tests as the package `tests` from the directory above.
    script_dir = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p) != script_dir]
    sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider']
                         + [os.path.join(here, name) for name in FAST]))
