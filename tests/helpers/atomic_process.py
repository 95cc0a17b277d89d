"""Another process using tf_prune.core.atomic, for the concurrency tests.

Usage:
  python tests/helpers/atomic_process.py write TARGET KIND WRITES GO
      prints "ready", waits until the file GO exists, then writes TARGET
      (KIND 'directory': a directory of two files; 'file': one file) WRITES
      times through `atomic_output`; prints a JSON line
      {"failures": [error, ...]}.
  python tests/helpers/atomic_process.py hold DIRECTORY
      takes DIRECTORY's `DirectoryLock`, prints "held", and keeps it until
      stdin closes (or the process is killed).

atomic.py is loaded by its path; its one import, tf_prune.core.errors,
imports the package (and TensorFlow) first, so the process takes seconds to
start, and the tests wait for its "ready" or "held".
"""

import importlib.util
import json
import os
import pathlib
import sys
import time

ATOMIC = (pathlib.Path(__file__).parents[2] / 'tf_prune' / 'core'
          / 'atomic.py')


def _load_atomic():
    spec = importlib.util.spec_from_file_location('atomic', ATOMIC)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_once(atomic, target, kind, content):
    with atomic.atomic_output(target) as temporary:
        if kind == 'file':
            with open(temporary, 'w') as file:
                file.write(content)
            return
        os.makedirs(temporary)
        for name in ('a', 'b'):
            with open(os.path.join(temporary, name), 'w') as file:
                file.write(content)


def write(target, kind, writes, go):
    atomic = _load_atomic()
    print('ready', flush=True)
    while not os.path.exists(go):
        time.sleep(0.001)
    failures = []
    for i in range(int(writes)):
        try:
            _write_once(atomic, target, kind, f'{os.getpid()}-{i}')
        except OSError as error:
            failures.append(f'{type(error).__name__}: {error}')
    print(json.dumps({'failures': failures}), flush=True)


def hold(directory):
    lock = _load_atomic().DirectoryLock(directory, 'training')
    lock.acquire()
    print('held', flush=True)
    sys.stdin.read()
    lock.release()


if __name__ == '__main__':
    {'write': write, 'hold': hold}[sys.argv[1]](*sys.argv[2:])
