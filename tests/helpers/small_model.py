"""A small pruned model trained with a training directory, as the tools'
tests read it."""

import numpy as np


def trained_pruned_mlp(train_dir, hidden, optimizer, spec):
    """Features (10) -> Dense `fc1` (`hidden`, relu) -> Dense `logits` (3),
    pruned and trained 2 epochs of 4 steps on random data, its checkpoints
    and config in `train_dir`.

    Args:
      train_dir: the training directory (`PruningCallback`'s
        `checkpoint_dir`).
      hidden: the units of `fc1`.
      optimizer: what `compile` takes, e.g. 'adam'.
      spec: the hparams.

    Returns:
      `(model, x)`: the trained pruned model and its 64 training inputs.
    """
    import keras  # pylint: disable=import-outside-toplevel
    import tf_prune  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 10)).astype(np.float32)
    y = rng.standard_normal((64, 3)).astype(np.float32)
    inputs = keras.Input((10,), name='features')
    features = keras.layers.Dense(hidden, activation='relu',
                                  name='fc1')(inputs)
    model = tf_prune.prune(keras.Model(
        inputs, keras.layers.Dense(3, name='logits')(features)))
    model.compile(optimizer=optimizer, loss='mse')
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[
        tf_prune.PruningCallback(spec, checkpoint_dir=str(train_dir))])
    return model, x
