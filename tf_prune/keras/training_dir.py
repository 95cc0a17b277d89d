"""Self-describing Keras training directories.

A training directory (`tf_prune.TrainingDirectory`, or
`PruningCallback(checkpoint_dir=...)`) holds:
- `tf.train.CheckpointManager` checkpoints of the model and its optimizer
  (`ckpt-<step>.index`, `ckpt-<step>.data-*`, the `checkpoint` state file);
- `tf_prune_model.json`: the model's Keras config and the pruning hparams it
  is trained with.
So the directory alone rebuilds the pruned model at its latest checkpoint
(`load_model`), training started again with it continues from there, and
training it with other hparams is refused rather than mixed in.
"""

import json
import os
import re
import shutil
import weakref

import absl.logging as logging
import keras
import tensorflow as tf

from tf_prune.core import atomic
from tf_prune.core import errors
from tf_prune.core import hparams as hparams_lib
from tf_prune.core.checkpoint_dirs import checkpoint_prefixes
from tf_prune.core.checkpoint_dirs import latest_checkpoint
from tf_prune.core.checkpoint_dirs import latest_step
from tf_prune.core.checkpoint_dirs import restorable_checkpoint

__all__ = ['MODEL_CONFIG', 'TrainingCheckpoints', 'check_hparams',
           'is_training_dir', 'latest_checkpoint', 'latest_step',
           'load_model', 'recorded_hparams', 'resume_from',
           'write_model_config']

MODEL_CONFIG = 'tf_prune_model.json'
_FORMAT = 'tf_prune.keras_checkpoint'
# Version 2 records the pruning hparams; version 1 did not.
_VERSION = 2


def is_training_dir(directory):
    """Whether `directory` is a tf_prune training directory."""
    return os.path.isfile(os.path.join(directory, MODEL_CONFIG))


def _read_description(directory):
    config_path = os.path.join(directory, MODEL_CONFIG)
    try:
        with open(config_path) as file:
            description = json.load(file)
        if description.get('format') != _FORMAT:
            raise ValueError(f'format is {description.get("format")!r}, '
                             f'not {_FORMAT!r}')
        return description
    except (OSError, ValueError, AttributeError) as error:
        raise errors.ModelFileError(
            f'{config_path} is unreadable: {errors.one_line(error)}'
        ) from error


def write_model_config(model, directory, hparams=None):
    """Writes `model`'s Keras config and `hparams` beside its checkpoints.

    Args:
      model: the Keras model trained in `directory`.
      directory: the training directory (created if missing).
      hparams: the `PruningHParams` (or spec) it is trained with, or None.
    """
    description = {'format': _FORMAT, 'version': _VERSION,
                   'keras_version': keras.__version__,
                   'model': json.loads(model.to_json())}
    if hparams is not None:
        description['pruning_hparams'] = str(hparams_lib.as_hparams(hparams))
    atomic.write_bytes(os.path.join(directory, MODEL_CONFIG),
                       json.dumps(description, indent=1).encode())


def recorded_hparams(directory):
    """The pruning hparams a training directory records, or None.

    Returns:
      A `PruningHParams`, or None for a directory that is not a training
      directory yet or records none.

    Raises:
      ModelFileError: the directory's description is unreadable.
    """
    if not is_training_dir(directory):
        return None
    spec = _read_description(directory).get('pruning_hparams')
    return None if spec is None else hparams_lib.as_hparams(spec)


def check_hparams(directory, hparams):
    """Raises unless `hparams` are those `directory` was trained with.

    Args:
      directory: a training directory, or a directory that is not one yet.
      hparams: a `PruningHParams` or spec.

    Raises:
      ValueError: the directory records other hparams; one line naming the
        values that differ, both recorded and given, and the way out.
    """
    recorded = recorded_hparams(directory)
    given = hparams_lib.as_hparams(hparams)
    if recorded is None or recorded == given:
        return
    old, new = recorded.values(), given.values()
    differ = [name for name in old if old[name] != new[name]]

    def spec(values):
        return ','.join(f'{name}={hparams_lib.format_value(values[name])}'
                        for name in differ)

    raise ValueError(
        f'training directory {directory} was trained with {spec(old)!r}, '
        f'not {spec(new)!r}; give the same pruning hparams to continue it, '
        f'or another directory (or remove this one) to start over')


def resume_from(directory):
    """The checkpoint training in `directory` continues from, and why.

    Args:
      directory: a training directory, or one that does not exist yet.

    Returns:
      `(prefix, note)`: the newest intact checkpoint (None when there is
      none yet), and one line saying which damaged newer checkpoints are
      passed over for it (None when none are).

    Raises:
      ModelFileError: the `checkpoint` state file is unreadable, or no
        checkpoint is intact; one line naming the file.
    """
    prefix, skipped = restorable_checkpoint(directory)
    if not skipped:
        return prefix, None
    more = {1: '', 2: ' (so is the checkpoint before it)'}.get(
        len(skipped), f' (so are the {len(skipped) - 1} before it)')
    return prefix, (f'{skipped[0]}{more}; training continues from {prefix}, '
                    f'the newest intact checkpoint')


# What a checkpoint write killed midway leaves: the shards TF writes under
# `<prefix>_temp/` and merges into `<prefix>.*` (the prefix is
# TrainingCheckpoints' `ckpt-<step>`), and CheckpointManager's temporary of
# the `checkpoint` state file (`checkpoint.tmp<uuid hex>`).
_CHECKPOINT_LEFTOVER = re.compile(r'ckpt-\d+_temp|checkpoint\.tmp[0-9a-f]{32}')


def remove_checkpoint_leftovers(directory):
    """Removes unfinished checkpoint writes from a training directory.

    Only the holder of the directory's lock writes checkpoints there, so
    under the lock any such file is a killed training's.

    Args:
      directory: a training directory, locked by this process.
    """
    for name in os.listdir(directory):
        if _CHECKPOINT_LEFTOVER.fullmatch(name):
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


class TrainingCheckpoints:
    """The model's and optimizer's checkpoints in a training directory.

    While it lives (until `close()`), the directory is locked: another
    process's `TrainingCheckpoints` or `TrainingDirectory` there is refused.
    Unfinished checkpoint writes of a killed training are removed when it
    takes the lock.

    Args:
      model: a compiled Keras model.
      directory: the training directory.
      max_to_keep: how many checkpoints to keep.
      lock: take the directory's lock (False for a caller holding it).

    Raises:
      ModelFileError: the directory's `checkpoint` state file is unreadable
        (TF's manager would start over and write a new one over it).
      DirectoryInUseError: another process trains in the directory.
    """

    def __init__(self, model, directory, max_to_keep=5, lock=True):
        checkpoint_prefixes(directory)  # raises for an unreadable state file
        self._lock = None
        if lock:
            self._lock = atomic.DirectoryLock(directory, 'training')
            self._lock.acquire()
            weakref.finalize(self, self._lock.release)
            remove_checkpoint_leftovers(directory)
        self._model = model
        self._directory = directory
        self._checkpoint = tf.train.Checkpoint(model=model,
                                               optimizer=model.optimizer)
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, directory, max_to_keep=max_to_keep)

    def restore_latest(self):
        """Restores the newest intact checkpoint, if any.

        A damaged newer checkpoint (a truncated or missing `.data` file, an
        empty `.index`, ...) is passed over with a warning, `resume_from`'s
        note, and training continues from the one before; `latest_step`
        passes over the same ones.

        Returns:
          Its path, or None when the directory has no checkpoint yet.

        Raises:
          ModelFileError: no checkpoint of the directory is intact, or the
            newest intact one does not hold this model.
        """
        path, note = resume_from(self._directory)
        if path is None:
            return None
        if note:
            logging.warning('%s', note)
        optimizer = self._model.optimizer
        if not optimizer.built:
            # Restored values go into variables that exist.
            optimizer.build(self._model.trainable_variables)
        try:
            self._checkpoint.restore(path).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as error:
            raise errors.ModelFileError(
                f'checkpoint {path} does not hold this model: '
                f'{errors.one_line(error)}; train it in another directory'
            ) from error
        logging.info('Restored %s: training continues at step %d', path,
                     int(optimizer.iterations.numpy()))
        return path

    def close(self):
        """Releases the directory's lock, when this object took it."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def save(self):
        """Writes a checkpoint numbered by the optimizer's step."""
        return self._manager.save(
            checkpoint_number=self._model.optimizer.iterations)


def load_model(directory):
    """The pruned model of a training directory, at its latest checkpoint.

    Args:
      directory: a training directory.

    Returns:
      The Keras model (with its `PruneWrapper`s), not compiled.

    Raises:
      ModelFileError: no config, no checkpoint, a damaged one (see
        `latest_checkpoint`), or a checkpoint that does not hold the
        model's variables.
    """
    description = _read_description(directory)
    try:
        model = keras.models.model_from_json(json.dumps(description['model']))
    except (ValueError, KeyError, TypeError) as error:
        raise errors.ModelFileError(
            f'{os.path.join(directory, MODEL_CONFIG)} holds no model Keras '
            f'can build: {errors.one_line(error)}') from error
    prefix = latest_checkpoint(directory)
    try:
        tf.train.Checkpoint(model=model).restore(
            prefix).expect_partial().assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as error:
        raise errors.ModelFileError(
            f'checkpoint {prefix} is unreadable: {errors.one_line(error)}'
        ) from error
    return model
