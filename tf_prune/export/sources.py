"""What the tools read: every kind of pruned model on disk, told apart.

- a TF1 checkpoint directory with `.meta` graphs (contrib's training);
- a training directory of `PruningCallback(checkpoint_dir=...)`;
- a `.keras` file;
- a SavedModel directory.
"""

import os
import zipfile

import keras

from tf_prune.core import checkpoint_dirs
from tf_prune.core import errors
from tf_prune.export import frozen
from tf_prune.export import writers
from tf_prune.keras import training_dir

# Output formats of `write` and the file name each gets by default.
FORMATS = {'graphdef': '.pb', 'tflite': '.tflite', 'saved_model': '',
           'keras': '.keras'}


def kind(path):
    """'tf1_checkpoint', 'keras_checkpoint', 'keras' or 'saved_model'.

    Raises:
      ModelFileError: `path` is none of these: missing, a file of another
        kind, or a directory with no checkpoint.
    """
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, 'saved_model.pb')):
            return 'saved_model'
        if training_dir.is_training_dir(path):
            return 'keras_checkpoint'
        if checkpoint_dirs.holds_checkpoint(path):
            return 'tf1_checkpoint'
        raise errors.ModelFileError(
            f'no checkpoint in {path}: no "checkpoint" file or .index file; '
            f'give a checkpoint or training directory, a SavedModel or a '
            f'.keras file')
    if path.endswith('.keras') and os.path.isfile(path):
        return 'keras'
    if not os.path.exists(path):
        raise errors.ModelFileError(f'{path} does not exist')
    raise errors.ModelFileError(
        f'{path} is not a .keras file, a SavedModel or a checkpoint '
        f'directory')


def _keras_file(path):
    """The model of a `.keras` file.

    Raises:
      ModelFileError: the file is empty, not a zip archive (truncated, or
        of another kind) or not a Keras model.
    """
    if not zipfile.is_zipfile(path):
        # Keras says "File not found" for these.
        what = ('it is empty' if os.path.getsize(path) == 0 else
                'it is not a zip archive (truncated, or another kind of file)')
        raise errors.ModelFileError(
            f'{path} is not a readable .keras file: {what}')
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # pylint: disable=broad-except
        raise errors.ModelFileError(
            f'{path} is not a readable .keras file: {errors.one_line(error)}'
        ) from error


def load(path, output_node_names=None):
    """The model at `path`: a Keras model, or a `FrozenGraph` for graphs.

    Args:
      path: any kind `kind` tells apart.
      output_node_names: the output nodes, required for a TF1 checkpoint.

    Returns:
      A Keras model (pruned or not) for `.keras` files and training
      directories; a stripped `FrozenGraph` for TF1 checkpoints and
      SavedModels.

    Raises:
      ModelFileError: unreadable input.
      StripError: missing output nodes.
    """
    source_kind = kind(path)
    if source_kind == 'tf1_checkpoint':
        return frozen.freeze_checkpoint(path, output_node_names)
    if source_kind == 'saved_model':
        return frozen.freeze_saved_model(path, output_node_names)
    if source_kind == 'keras_checkpoint':
        return training_dir.load_model(path)
    return _keras_file(path)


def write(source, path, output_format='graphdef', output_node_names=None,
          quantize=None, sparse_tflite=True, representative_data=None):
    """Writes `source` stripped, in `output_format`.

    Args:
      source: what `load` returns.
      path: the output file (a directory for 'saved_model').
      output_format: a key of FORMATS.
      output_node_names: for Keras models, the nodes to output (default:
        the model's outputs).
      quantize, sparse_tflite, representative_data: for 'tflite', see
        `writers.tflite`.

    Raises:
      StripError: 'keras' for a graph.
      ValueError: bad TFLite options or an unknown format.
    """
    if output_format == 'keras':
        if isinstance(source, frozen.FrozenGraph):
            raise errors.StripError(
                "output_format 'keras' needs a Keras model (a .keras file or "
                "a tf_prune training directory); this input is a graph: use "
                "'graphdef', 'tflite' or 'saved_model'")
        writers.keras_file(source, path)
        return
    if output_format == 'graphdef':
        writers.frozen_graph(source, path, output_node_names)
    elif output_format == 'tflite':
        writers.tflite(source, path, sparse=sparse_tflite, quantize=quantize,
                      representative_data=representative_data,
                      output_node_names=output_node_names)
    elif output_format == 'saved_model':
        writers.saved_model(source, path, output_node_names)
    else:
        raise ValueError(f'output_format={output_format!r}; use one of '
                         f'{", ".join(FORMATS)}')
