"""Trains a pruned CNN for some epochs, resuming from a checkpoint if any.

Run as `python -m tests.helpers.resume_training CKPT_DIR FIRST_EPOCH
LAST_EPOCH OUT.npz`: restores CKPT_DIR's latest checkpoint when there is one,
fits epochs [FIRST_EPOCH, LAST_EPOCH) with PruningCallback, checkpoints, and
saves every mask, threshold and weight to OUT.npz. Deterministic ops and
fixed data make two runs comparable bit for bit.
"""

import sys

import keras
import numpy as np
import tensorflow as tf

import tf_prune

SPEC = ('pruning_frequency=2,begin_pruning_step=2,sparsity_function_end_step=10,'
        'target_sparsity=0.8,threshold_decay=0.5')
STEPS_PER_EPOCH = 3
BATCH = 8


def cnn():
    """The CNN, not pruned yet."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation='relu', name='conv1')(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation='relu', name='fc1')(x)
    return keras.Model(inputs, keras.layers.Dense(3, name='fc2')(x))


def data():
    """The fixed training data, (x, y): STEPS_PER_EPOCH batches."""
    rng = np.random.default_rng(1)
    n = STEPS_PER_EPOCH * BATCH
    return (rng.normal(size=(n, 8, 8, 1)).astype(np.float32),
            rng.normal(size=(n, 3)).astype(np.float32))


def save_state(model, out):
    """Saves every variable of `model`, and the optimizer's step, to `out`."""
    state = {v.path: v.numpy() for v in model.weights}
    state['optimizer_iterations'] = model.optimizer.iterations.numpy()
    np.savez(out, **state)


def main(ckpt_dir, first_epoch, last_epoch, out):
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    model = tf_prune.prune(cnn(), SPEC)
    model.compile(keras.optimizers.Adam(0.01), 'mse')
    model.optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=1)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_consumed()
    x, y = data()
    model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0,
              initial_epoch=first_epoch, epochs=last_epoch,
              callbacks=[tf_prune.PruningCallback(SPEC)])
    manager.save()
    save_state(model, out)


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
