"""An exporter killed midway, for the atomic-write test.

Usage: python -m tests.helpers.killed_writer WRITER OUTPUT CRASH
WRITER is a function of tf_prune.export; CRASH is 'while_writing' (SIGKILL
as soon as the temporary output appears) or 'before_rename' (SIGKILL when
the output is written, before it is renamed into place).
"""

import json
import os
import signal
import sys
import threading
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402

import tf_prune  # noqa: E402
from tf_prune import export  # noqa: E402


def _die(crash):
    print(json.dumps({'killed': crash}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_when_temporary_appears(directory, stem):
    # Seen on two polls in a row: atomic_output reserves the temporary's
    # name with a file it removes at once, for the writer to create.
    seen = 0
    while seen < 2:
        seen = seen + 1 if any(name.startswith(f'.{stem}.tmp-')
                               for name in os.listdir(directory)) else 0
        time.sleep(0.0005)
    _die('while_writing')


def main(writer, output, crash):
    model = tf_prune.prune(keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(256), keras.layers.Dense(4)]))
    if crash == 'while_writing':
        # The rename waits, so the kill always comes first.
        os.replace = lambda *args: time.sleep(600)
        directory, name = os.path.split(output)
        threading.Thread(target=_kill_when_temporary_appears,
                         args=(directory, os.path.splitext(name)[0]),
                         daemon=True).start()
    else:
        os.replace = lambda *args: _die('before_rename')
    getattr(export, writer)(model, output)
    sys.exit('the writer finished: it was not killed')


if __name__ == '__main__':
    main(*sys.argv[1:])
