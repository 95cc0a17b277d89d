r"""Strips pruning state from a trained model: contrib's strip_pruning_vars.

contrib's command, unchanged, for TF1 checkpoints:

    python tools/strip_pruning_vars.py --checkpoint_dir=/tmp/cifar10_train \
        --output_node_names=softmax_linear/softmax_linear \
        --output_dir=/tmp --filename=pruning_stripped.pb

and for Keras models (the outputs default to the model's):

    python tools/strip_pruning_vars.py --model=model.keras \
        --output_format=tflite --quantize=float16

Input: --checkpoint_dir (a TF1 checkpoint directory with .meta graphs, or a
training directory written by tf_prune.PruningCallback(checkpoint_dir=...))
or --model (also a .keras file or a SavedModel). Bad input prints one line
on stderr and exits with status 2, writing nothing.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app, flags, logging  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_prune  # noqa: E402
from tf_prune import sources  # noqa: E402

flags.DEFINE_string('checkpoint_dir', None,
                    'Path to the checkpoints (TF1 with .meta graphs, or a '
                    'tf_prune training directory)')
flags.DEFINE_string('output_node_names', None,
                    'Comma separated list of output node names; required '
                    'for TF1 graphs, default for Keras models: their outputs')
flags.DEFINE_string('output_dir', '/tmp', 'Directory of the output')
flags.DEFINE_string('filename', 'pruning_stripped.pb',
                    'Output file name; with another --output_format, the '
                    'default gets its extension (.tflite, .keras, none for '
                    'saved_model)')
flags.DEFINE_string('model', None, 'A .keras file, a SavedModel or a '
                    'checkpoint directory, instead of --checkpoint_dir')
flags.DEFINE_enum('output_format', 'graphdef',
                  ['graphdef', 'tflite', 'saved_model', 'keras'],
                  'What to write')
flags.DEFINE_enum('quantize', 'none', ['none', 'dynamic', 'int8', 'float16'],
                  'TFLite quantization')
flags.DEFINE_bool('sparse_tflite', True,
                  "Store TFLite weights in TFLite's sparse format")
flags.DEFINE_string('representative_data', None,
                    'A .npy file of input examples, for --quantize=int8')
FLAGS = flags.FLAGS

_DEFAULT_FILENAME = 'pruning_stripped.pb'


def _fail(message):
    print(f'strip_pruning_vars: {message}', file=sys.stderr)
    return 2


def _output_path():
    filename = FLAGS.filename
    if filename == _DEFAULT_FILENAME:
        stem = os.path.splitext(filename)[0]
        filename = stem + sources.FORMATS[FLAGS.output_format]
    directory = FLAGS.output_dir
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise ValueError(f'cannot create --output_dir={directory}: '
                         f'{error.strerror}') from error
    if not os.access(directory, os.W_OK):
        raise ValueError(f'--output_dir={directory} is not writable')
    return os.path.join(directory, filename)


def _representative_data():
    if not FLAGS.representative_data:
        return None
    try:
        return np.load(FLAGS.representative_data)
    except (OSError, ValueError) as error:
        raise ValueError(f'--representative_data={FLAGS.representative_data}'
                         f' is not a readable .npy file') from error


def main(argv):
    del argv
    # TF1 graph functions announce their deprecation, and the TFLite
    # converter its conversion path; the user cannot act on either.
    tf.get_logger().setLevel('ERROR')
    logging.set_verbosity(logging.ERROR)
    if bool(FLAGS.checkpoint_dir) == bool(FLAGS.model):
        return _fail('give one of --checkpoint_dir and --model')
    output_nodes = [name.strip() for name in
                    (FLAGS.output_node_names or '').split(',') if name.strip()]
    quantize = None if FLAGS.quantize == 'none' else FLAGS.quantize
    try:
        path = _output_path()
        data = _representative_data()
        source = sources.load(FLAGS.checkpoint_dir or FLAGS.model,
                              output_nodes)
        sources.write(source, path, FLAGS.output_format, output_nodes,
                      quantize, FLAGS.sparse_tflite, data)
    except (tf_prune.StripError, ValueError) as error:
        return _fail(error)
    except OSError as error:
        return _fail(f'cannot write {error.filename or FLAGS.output_dir}: '
                     f'{error.strerror}')
    print(f'Wrote {path}')
    return 0


if __name__ == '__main__':
    app.run(main)
