"""Finding the newest checkpoint of a directory, as every reader needs."""

import os

import tensorflow as tf

from tf_prune.core import errors


def latest_checkpoint(directory):
    """The prefix of the newest checkpoint in `directory`.

    Args:
      directory: a directory written by a `tf.train.Saver` (TF1) or a
        `tf.train.CheckpointManager`.

    Returns:
      The checkpoint's prefix (`<directory>/model.ckpt-100`).

    Raises:
      ModelFileError: the directory is missing or holds no checkpoint.
    """
    if not tf.io.gfile.isdir(directory):
        raise errors.ModelFileError(
            f'checkpoint directory {directory} does not exist')
    prefix = tf.train.latest_checkpoint(directory)
    if prefix is None or not tf.io.gfile.exists(prefix + '.index'):
        raise errors.ModelFileError(
            f'no checkpoint in {directory} (no "checkpoint" file naming a '
            f'.index file); give a training directory')
    return prefix


def latest_step(directory):
    """The step of the latest `ckpt-<step>` checkpoint in `directory`, or 0.

    `tf_prune.keras` numbers each checkpoint of a training directory by the
    optimizer's step, so a script can tell how far training got before it
    builds anything, e.g. to pass `initial_epoch` to `fit`.

    Args:
      directory: a training directory, or one that does not exist yet.

    Returns:
      An int.
    """
    if not os.path.isdir(directory):
        return 0
    prefix = tf.train.latest_checkpoint(directory)
    return int(prefix.rsplit('-', 1)[1]) if prefix else 0
