"""Finding a directory's checkpoints, and telling intact ones from damaged.

Every reader goes through here, so a damaged checkpoint is one
`ModelFileError` naming the file at fault, whichever reader met it: a
`checkpoint` state file that is not one, a missing or empty `.index`, a
`.data` file that is missing, truncated or fails its checksum.
"""

import os
import re

from google.protobuf import text_format
import tensorflow as tf
from tensorflow.python.training.checkpoint_state_pb2 import CheckpointState

from tf_prune.core import errors

# The state file `tf.train.Saver` and `tf.train.CheckpointManager` keep.
STATE_FILE = 'checkpoint'
# A checkpoint's number: the digits ending its prefix (`ckpt-8`).
_NUMBER = re.compile(r'-(\d+)$')


def _number(prefix):
    match = _NUMBER.search(prefix)
    return int(match.group(1)) if match else -1


def _newest_on_disk(directory):
    """The prefix of the highest-numbered `.index` file, or None."""
    indexes = tf.io.gfile.glob(os.path.join(directory, '*.index'))
    prefixes = [path[:-len('.index')] for path in indexes]
    return max(prefixes, key=_number) if prefixes else None


def _state_fix(directory, into='it'):
    """How to mend a state file: name the newest checkpoint on disk."""
    newest = _newest_on_disk(directory)
    if newest is None:
        return 'the directory holds no .index file to name either'
    name = os.path.basename(newest)
    return (f"to use its newest checkpoint, write 'model_checkpoint_path: "
            f"\"{name}\"' into {into}")


def holds_checkpoint(directory):
    """Whether `directory` holds a checkpoint's files, intact or not: a
    `checkpoint` state file or an `.index` file."""
    return (tf.io.gfile.exists(os.path.join(directory, STATE_FILE))
            or _newest_on_disk(directory) is not None)


def checkpoint_prefixes(directory):
    """The checkpoints the `checkpoint` state file lists, oldest first.

    Args:
      directory: a checkpoint directory.

    Returns:
      Their prefixes (`<directory>/ckpt-8`), the latest last; empty when
      the directory or its state file does not exist.

    Raises:
      ModelFileError: the state file is not one (binary, not a
        CheckpointState in text, or naming no checkpoint).
    """
    path = os.path.join(directory, STATE_FILE)
    if not tf.io.gfile.exists(path):
        return []
    state = CheckpointState()
    try:
        with tf.io.gfile.GFile(path, 'rb') as file:
            text_format.Parse(file.read().decode('utf-8'), state)
    except (UnicodeDecodeError, text_format.ParseError) as error:
        reason = ('binary, not text' if isinstance(error, UnicodeDecodeError)
                  else errors.one_line(error))
        raise errors.ModelFileError(
            f'{path} is not a checkpoint state file ({reason}); '
            f'{_state_fix(directory)}') from error
    except tf.errors.OpError as error:
        raise errors.ModelFileError(
            f'{path} is unreadable: {errors.one_line(error)}') from error
    if not state.model_checkpoint_path:
        raise errors.ModelFileError(
            f'{path} names no checkpoint; {_state_fix(directory)}')
    prefixes = [p for p in state.all_model_checkpoint_paths
                if p != state.model_checkpoint_path]
    prefixes.append(state.model_checkpoint_path)
    # Relative paths are relative to the directory, as TF reads them.
    return [os.path.join(directory, p) for p in prefixes]


def _data_files(prefix):
    """The `.data` shards `prefix` needs, and which of them are missing."""
    found = tf.io.gfile.glob(f'{prefix}.data-?????-of-?????')
    if not found:
        return [], [f'{prefix}.data-00000-of-00001']
    shards = int(found[0][-5:])
    needed = [f'{prefix}.data-{i:05d}-of-{shards:05d}' for i in range(shards)]
    return needed, [path for path in needed if path not in found]


def _damage(error):
    """What a failed read of a checkpoint's tensors says about its data."""
    if isinstance(error, IndexError):
        return 'is truncated'
    if 'Checksum does not match' in str(error):
        return 'fails its checksum: its bytes changed since it was written'
    return f'is unreadable ({errors.one_line(error)})'


def check_checkpoint(prefix):
    """Raises unless every tensor of the checkpoint at `prefix` reads back.

    Reads the whole checkpoint once (the `.data` files' checksums are
    checked as they are read).

    Args:
      prefix: a checkpoint's prefix (`<directory>/ckpt-8`).

    Raises:
      ModelFileError: one line naming the file that is missing or damaged.
    """
    index = prefix + '.index'
    if not tf.io.gfile.exists(index):
        raise errors.ModelFileError(
            f'checkpoint {prefix} is unreadable: {index} is missing')
    if tf.io.gfile.stat(index).length == 0:
        raise errors.ModelFileError(
            f'checkpoint {prefix} is unreadable: {index} is empty')
    try:
        reader = tf.train.load_checkpoint(prefix)
    except tf.errors.OpError as error:
        raise errors.ModelFileError(
            f'checkpoint {prefix} is unreadable: {index} is not a checkpoint '
            f'index ({errors.one_line(error)})') from error
    needed, missing = _data_files(prefix)
    if missing:
        raise errors.ModelFileError(
            f'checkpoint {prefix} is unreadable: {missing[0]} is missing')
    try:
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, IndexError) as error:
        data = needed[0] if len(needed) == 1 else f'one of {prefix}.data-*'
        raise errors.ModelFileError(
            f'checkpoint {prefix} is unreadable: {data} {_damage(error)}'
        ) from error


def latest_checkpoint(directory):
    """The prefix of the newest checkpoint in `directory`, checked intact.

    Args:
      directory: a directory written by a `tf.train.Saver` (TF1) or a
        `tf.train.CheckpointManager`.

    Returns:
      The checkpoint's prefix (`<directory>/model.ckpt-100`).

    Raises:
      ModelFileError: the directory is missing, holds no checkpoint, its
        state file is unreadable, or the checkpoint is damaged.
    """
    if not tf.io.gfile.isdir(directory):
        raise errors.ModelFileError(
            f'checkpoint directory {directory} does not exist')
    prefixes = checkpoint_prefixes(directory)
    if not prefixes:
        # Checkpoint files without a state file: it can be written.
        fix = (_state_fix(directory, os.path.join(directory, STATE_FILE))
               if _newest_on_disk(directory) else
               'give a checkpoint or training directory, a SavedModel or a '
               '.keras file')
        raise errors.ModelFileError(
            f'no checkpoint in {directory} (no "checkpoint" file); {fix}')
    check_checkpoint(prefixes[-1])
    return prefixes[-1]


def restorable_checkpoint(directory):
    """The newest intact checkpoint of `directory`, for training to resume.

    Args:
      directory: a training directory, or one that does not exist yet.

    Returns:
      `(prefix, skipped)`: the newest checkpoint that reads back intact (None
      when there is no checkpoint yet), and the one-line reasons the newer
      ones listed in the state file were passed over, newest first.

    Raises:
      ModelFileError: the state file is unreadable, or no checkpoint it
        lists is intact.
    """
    if not tf.io.gfile.isdir(directory):
        return None, []
    skipped = []
    for prefix in reversed(checkpoint_prefixes(directory)):
        try:
            check_checkpoint(prefix)
        except errors.ModelFileError as error:
            skipped.append(str(error))
            continue
        return prefix, skipped
    if skipped:
        raise errors.ModelFileError(
            f'no intact checkpoint in {directory}: {skipped[0]}')
    return None, []


def latest_step(directory):
    """The step of the newest intact `ckpt-<step>` checkpoint, or 0.

    `tf_prune.keras` numbers each checkpoint of a training directory by the
    optimizer's step, so a script can tell how far training got before it
    builds anything, e.g. to pass `initial_epoch` to `fit`. A damaged newest
    checkpoint is passed over, as `TrainingCheckpoints.restore_latest`
    passes over it.

    Args:
      directory: a training directory, or one that does not exist yet.

    Returns:
      An int.

    Raises:
      ModelFileError: see `restorable_checkpoint`.
    """
    prefix, _ = restorable_checkpoint(directory)
    return max(_number(prefix), 0) if prefix else 0
