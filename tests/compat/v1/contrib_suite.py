"""Runs the ported contrib test files in one of TF 2's two TF1 modes.

contrib's tests build graphs and run sessions, so they need eager execution
off, which is process-wide: `test_contrib_suite.py` runs this module in a
subprocess per mode. Each case's outcome is printed as one JSON line.

Usage: python -m tests.compat.v1.contrib_suite --mode=graph|v1 [MODULE...]
  graph: tf.compat.v1.disable_eager_execution() (TF 2 control flow and
         resource variables);
  v1:    tf.compat.v1.disable_v2_behavior() (TF 1 control flow, ref
         variables).
"""

import argparse
import json
import os
import sys
import unittest

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import tensorflow as tf  # noqa: E402

MODULES = (
    'pruning_test',
    'pruning_utils_test',
    'strip_pruning_vars_test',
    'layers_test',
    'rnn_cells_test',
)
MODES = {
    'graph': tf.compat.v1.disable_eager_execution,
    'v1': tf.compat.v1.disable_v2_behavior,
}


class _JsonLinesResult(unittest.TextTestResult):
    """Prints `{"case": ..., "outcome": ...}` per case on stdout."""

    def _report(self, test, outcome, detail=''):
        print(json.dumps({'case': test.id().rsplit('.', 2)[-2] + '.'
                          + test.id().rsplit('.', 1)[-1],
                          'module': test.__class__.__module__.rsplit('.')[-1],
                          'outcome': outcome, 'detail': detail}),
              flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._report(test, 'passed')

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._report(test, 'failed', self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._report(test, 'error', self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._report(test, 'skipped', reason)


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument('--mode', choices=sorted(MODES), required=True)
    parser.add_argument('modules', nargs='*', default=MODULES)
    args = parser.parse_args(argv)
    MODES[args.mode]()
    suite = unittest.TestSuite(
        unittest.defaultTestLoader.loadTestsFromName(
            f'tests.compat.v1.contrib.{name}') for name in args.modules)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=0,
                                     resultclass=_JsonLinesResult)
    return 0 if runner.run(suite).wasSuccessful() else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
