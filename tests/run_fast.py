"""The fast tests (no model training, no subprocess), for `bazel test`.

    bazel test //tests:fast
"""

import os
import sys

import pytest

FAST = ['test_hparams.py', 'test_schedule.py', 'test_masking.py',
        'test_flags.py', 'test_strip.py', 'test_datasets.py']

if __name__ == '__main__':
    here = os.path.dirname(os.path.abspath(__file__))
    sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider']
                         + [os.path.join(here, name) for name in FAST]))
