"""Self-describing Keras training directories.

`PruningCallback(checkpoint_dir=...)` writes, in one directory:
- `tf.train.CheckpointManager` checkpoints of the model and its optimizer
  (`ckpt-<step>.index`, `ckpt-<step>.data-*`, the `checkpoint` state file);
- `tf_prune_model.json`: the model's Keras config.
So the directory alone rebuilds the pruned model at its latest checkpoint
(`load_model`), and training started again with the same directory
continues from there.
"""

import json
import os

import absl.logging as logging
import keras
import tensorflow as tf

from tf_prune import atomic
from tf_prune import strip

MODEL_CONFIG = 'tf_prune_model.json'
_FORMAT = 'tf_prune.keras_checkpoint'
_VERSION = 1


def is_training_dir(directory):
    """Whether `directory` was written by `PruningCallback(checkpoint_dir=)`."""
    return os.path.isfile(os.path.join(directory, MODEL_CONFIG))


def write_model_config(model, directory):
    """Writes `model`'s Keras config beside its checkpoints, atomically."""
    description = {'format': _FORMAT, 'version': _VERSION,
                   'keras_version': keras.__version__,
                   'model': json.loads(model.to_json())}
    os.makedirs(directory, exist_ok=True)
    atomic.write_bytes(os.path.join(directory, MODEL_CONFIG),
                       json.dumps(description, indent=1).encode())


class TrainingCheckpoints:
    """The model's and optimizer's checkpoints in a training directory.

    Args:
      model: a compiled Keras model.
      directory: the training directory.
      max_to_keep: how many checkpoints to keep.
    """

    def __init__(self, model, directory, max_to_keep=5):
        self._model = model
        self._checkpoint = tf.train.Checkpoint(model=model,
                                               optimizer=model.optimizer)
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, directory, max_to_keep=max_to_keep)

    def restore_latest(self):
        """Restores the latest checkpoint, if any.

        Returns:
          Its path, or None when the directory has no checkpoint yet.
        """
        path = self._manager.latest_checkpoint
        if path is None:
            return None
        optimizer = self._model.optimizer
        if not optimizer.built:
            # Restored values go into variables that exist.
            optimizer.build(self._model.trainable_variables)
        self._checkpoint.restore(path).assert_existing_objects_matched()
        logging.info('Restored %s: training continues at step %d', path,
                     int(optimizer.iterations.numpy()))
        return path

    def save(self):
        """Writes a checkpoint numbered by the optimizer's step."""
        return self._manager.save(
            checkpoint_number=self._model.optimizer.iterations)


def latest_step(directory):
    """The step of the latest checkpoint in a training directory, or 0.

    `TrainingCheckpoints` numbers each checkpoint by the optimizer's step
    (`ckpt-<step>`), so a script can tell how far training got before it
    builds anything, e.g. to pass `initial_epoch` to `fit`.

    Args:
      directory: a training directory, or one that does not exist yet.

    Returns:
      An int.
    """
    prefix = tf.train.latest_checkpoint(directory)
    return int(prefix.rsplit('-', 1)[1]) if prefix else 0


def load_model(directory):
    """The pruned model of a training directory, at its latest checkpoint.

    Args:
      directory: written by `PruningCallback(checkpoint_dir=...)`.

    Returns:
      The Keras model (with its `PruneWrapper`s), not compiled.

    Raises:
      StripError: no config, no checkpoint, or a checkpoint that does not
        hold the model's variables.
    """
    config_path = os.path.join(directory, MODEL_CONFIG)
    try:
        with open(config_path) as file:
            description = json.load(file)
        if description.get('format') != _FORMAT:
            raise ValueError(f'format is {description.get("format")!r}, '
                             f'not {_FORMAT!r}')
        model = keras.models.model_from_json(json.dumps(description['model']))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise strip.StripError(f'{config_path} is unreadable: '
                               f'{strip.one_line(error)}') from error
    prefix = strip.latest_checkpoint(directory)
    try:
        tf.train.Checkpoint(model=model).restore(
            prefix).expect_partial().assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as error:
        raise strip.StripError(f'checkpoint {prefix} is unreadable: '
                               f'{strip.one_line(error)}') from error
    return model
