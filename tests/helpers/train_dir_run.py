"""A training in a training directory, as the examples run it; or killed.

Usage: python -m tests.helpers.train_dir_run TRAIN_DIR EPOCHS OUT.npz [KILL]
Trains resume_training's CNN with PruningCallback(checkpoint_dir=TRAIN_DIR),
from the epoch the directory's latest checkpoint ends (the examples' resume)
to EPOCHS, and saves every variable to OUT.npz. With KILL=n the process
SIGKILLs itself during its n-th checkpoint write: TF has written the shards
(`ckpt-<step>_temp/`) and not merged them into `ckpt-<step>.*` yet.
"""

import json
import os
import signal
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.checkpoint import functional_saver  # noqa: E402

import tf_prune  # noqa: E402
from tests.helpers import resume_training as run  # noqa: E402


def _kill_at_merge(writes):
    """SIGKILLs this process when checkpoint write number `writes` merges."""
    io_ops = functional_saver.gen_io_ops
    merge = io_ops.merge_v2_checkpoints
    calls = []

    def merge_or_die(*args, **kwargs):
        calls.append(None)
        if len(calls) == writes:
            print(json.dumps({'killed': 'checkpoint_write'}), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return merge(*args, **kwargs)

    io_ops.merge_v2_checkpoints = merge_or_die


def main(train_dir, epochs, out, kill=None):
    if kill:
        _kill_at_merge(int(kill))
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    model = tf_prune.prune(run.cnn(), run.SPEC)
    model.compile(keras.optimizers.Adam(0.01), 'mse')
    completed = (tf_prune.checkpoints.latest_step(train_dir)
                 // run.STEPS_PER_EPOCH)
    x, y = run.data()
    model.fit(x, y, batch_size=run.BATCH, shuffle=False, verbose=0,
              initial_epoch=completed, epochs=int(epochs),
              callbacks=[tf_prune.PruningCallback(
                  run.SPEC, checkpoint_dir=train_dir)])
    run.save_state(model, out)


if __name__ == '__main__':
    main(*sys.argv[1:])
