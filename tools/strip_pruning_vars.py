r"""Strips pruning state from a trained model: contrib's strip_pruning_vars.

contrib's command, unchanged, for TF1 checkpoints:

    python tools/strip_pruning_vars.py --checkpoint_dir=/tmp/cifar10_train \
        --output_node_names=softmax_linear/softmax_linear \
        --output_dir=/tmp --filename=pruning_stripped.pb

and for Keras models (the outputs default to the model's):

    python tools/strip_pruning_vars.py --model=model.keras \
        --output_format=tflite --quantize=float16

and, with --shrink, for Keras models pruned with structure=channel: the
masked channels are removed (tf_prune.shrink), not only zeroed:

    python tools/strip_pruning_vars.py --checkpoint_dir=/tmp/train --shrink \
        --output_format=tflite

Input: --checkpoint_dir (a TF1 checkpoint directory with .meta graphs, or a
training directory written by tf_prune.PruningCallback(checkpoint_dir=...))
or --model (also a .keras file or a SavedModel). Bad input prints one line
on stderr and exits with status 2, writing nothing. TensorFlow's own logs
and warnings show with --verbose.
"""

import os
import re
import sys
import warnings

# TensorFlow reads its C++ log level when it is imported, before absl parses
# the flags: so a plain --verbose is looked for in sys.argv.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0' if '--verbose' in sys.argv else '2'

from absl import app, flags, logging  # noqa: E402
import numpy as np  # noqa: E402

from tf_prune import ModelFileError  # noqa: E402
from tf_prune import structured  # noqa: E402
from tf_prune.core import atomic  # noqa: E402
from tf_prune.export import sources  # noqa: E402

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
                  "Store TFLite weights in TFLite's sparse format (not with "
                  "--quantize=int8 or dynamic, whose sparse kernels LiteRT "
                  "cannot run: left out there unless given)")
flags.DEFINE_string('representative_data', None,
                    'A .npy file of input examples, for --quantize=int8')
flags.DEFINE_bool('shrink', False,
                  'Remove the masked channels of a Keras model pruned with '
                  'structure=channel (a .keras file or training directory): '
                  'write the smaller model tf_prune.shrink builds instead of '
                  'the same-size one with zeroed channels')
flags.DEFINE_bool('verbose', False, "Also print TensorFlow's logs and warnings")
FLAGS = flags.FLAGS

_DEFAULT_FILENAME = 'pruning_stripped.pb'


# The library's messages name its arguments; here they are flags.
_ARGUMENTS = re.compile(r'(?<![-\w])(output_node_names|output_format|'
                        r'quantize|representative_data)(?!\w)')


def _fail(message):
    message = _ARGUMENTS.sub(r'--\1', str(message))
    print(f'strip_pruning_vars: {message}', file=sys.stderr)
    return 2


def _output_path():
    filename = FLAGS.filename
    if filename == _DEFAULT_FILENAME:
        stem = os.path.splitext(filename)[0]
        filename = stem + sources.FORMATS[FLAGS.output_format]
    atomic.check_creatable(FLAGS.output_dir,
                           f'--output_dir={FLAGS.output_dir}')
    return os.path.join(os.path.abspath(FLAGS.output_dir), filename)


def _representative_data():
    """The --representative_data array: numbers, one input example per row."""
    path = FLAGS.representative_data
    if not path:
        return None
    try:
        # Not np.load, which opens a .npz archive too.
        with open(path, 'rb') as file:
            data = np.lib.format.read_array(file)
    except (OSError, ValueError) as error:
        raise ValueError(f'--representative_data={path} is not a readable '
                         f'.npy file') from error
    if data.dtype.kind not in 'biuf' or data.ndim < 1 or not len(data):
        raise ValueError(f'--representative_data={path} holds a {data.dtype} '
                         f'array of shape {data.shape}; give numbers, one '
                         f'input example per row')
    return data


def _load(output_nodes):
    """The input model, as `sources.load` gives it; with --shrink, the
    channel-pruned model shrunk.

    Raises:
      ModelFileError: the input is unreadable, also when the system says
        so (permissions, say).
      NotChannelPruned: --shrink, and the input has no channel masks.
    """
    given = FLAGS.checkpoint_dir or FLAGS.model
    try:
        if FLAGS.shrink:
            return structured.shrink(structured.load_channel_pruned(given))
        return sources.load(given, output_nodes)
    except OSError as error:
        raise ModelFileError(
            f'cannot read {error.filename or given}: {error.strerror}'
        ) from error


def _not_channel_pruned(error):
    """The line for --shrink given a model `shrink` cannot serve."""
    fix = ('leave out --shrink to write it stripped' if error.strippable
           else 'prune it with structure=channel first')
    return _fail(f'--shrink removes the channels of a Keras model pruned '
                 f'with structure=channel, and {error.reason}; {fix}')


def main(argv):
    del argv
    if not FLAGS.verbose:
        # TF1 graph functions announce their deprecation, and the TFLite
        # converter its conversion path; the user cannot act on either.
        logging.set_verbosity(logging.ERROR)
        warnings.simplefilter('ignore')
    if bool(FLAGS.checkpoint_dir) == bool(FLAGS.model):
        return _fail('give one of --checkpoint_dir and --model')
    output_nodes = [name.strip() for name in
                    (FLAGS.output_node_names or '').split(',') if name.strip()]
    quantize = None if FLAGS.quantize == 'none' else FLAGS.quantize
    sparse = FLAGS.sparse_tflite and (
        FLAGS['sparse_tflite'].present or quantize not in ('int8', 'dynamic'))
    if FLAGS.representative_data and quantize != 'int8':
        return _fail('--representative_data calibrates --quantize=int8 only; '
                     'leave it out, or add --quantize=int8')
    try:
        data = _representative_data()
        path = _output_path()
        source = _load(output_nodes)
        sources.write(source, path, FLAGS.output_format, output_nodes,
                      quantize, sparse, data)
    except structured.NotChannelPruned as error:
        return _not_channel_pruned(error)
    except ValueError as error:  # ModelFileError, StripError and bad options
        return _fail(error)
    except OSError as error:  # only writing is left: _load turns its own
        return _fail(f'cannot write {path}: {error.strerror or error}')
    print(f'Wrote {path}')
    return 0


if __name__ == '__main__':
    app.run(main)
