"""contrib's own test suite, ported, passes in both of TF 2's TF1 modes.

The ported files (tests/compat/v1/contrib/*_test.py) need eager execution
off for the whole process, so each mode runs them all in one subprocess
(contrib_suite.py), which reports each case as a JSON line.
"""

import collections
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.conftest import project_env

# The cases of each ported file (CONTRIB_TESTS.md lists what they check).
EXPECTED_CASES = {
    'pruning_test': 12,
    'pruning_utils_test': 54,
    'strip_pruning_vars_test': 3,
    'layers_test': 6,
    'rnn_cells_test': 2,
}


@pytest.mark.parametrize('mode', ['graph', 'v1'])
def test_every_contrib_case_passes(mode):
    run = subprocess.run(
        [sys.executable, '-m', 'tests.compat.v1.contrib_suite',
         f'--mode={mode}'],
        cwd=ROOT, env=project_env(), capture_output=True, text=True,
        timeout=600)
    cases = [json.loads(line) for line in run.stdout.splitlines()
             if line.startswith('{')]
    # TF's TestCase has a deprecated `test_session` that unittest collects
    # and skips as "Not a test"; nothing else may be skipped.
    cases = [c for c in cases if not c['case'].endswith('.test_session')]
    broken = [f"{c['module']}.{c['case']}: {c['outcome']}\n{c['detail']}"
              for c in cases if c['outcome'] != 'passed']
    assert not broken, '\n'.join(broken)
    passed = collections.Counter(c['module'] for c in cases)
    assert dict(passed) == EXPECTED_CASES, run.stderr[-3000:]
    assert run.returncode == 0, run.stderr[-3000:]
