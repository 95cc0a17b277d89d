r"""Prints the zeros of every weight tensor of a model file, and the total.

    python tools/inspect_sparsity.py /tmp/pruning_stripped.pb
    python tools/inspect_sparsity.py --json model.tflite

Reads .pb, .tflite, .keras, SavedModel and checkpoint directories (TF1 or
tf_prune training directories). The total counts every weight tensor,
biases and dense layers included.

With --pruned, the model given is the shrunk model of a model pruned with
structure=channel (its training directory or .keras file), as a .keras
file, a .pb or a SavedModel; the report lists each layer of the pruned
model with weights: its output channels, parameters and FLOPs before and
after, then the totals:

    python tools/inspect_sparsity.py --pruned=/tmp/train shrunk.keras

Bad input prints one line on stderr and exits with status 2. TensorFlow's
own logs and warnings show with --verbose.
"""

import json
import os
import sys
import warnings

# TensorFlow reads its C++ log level when it is imported, before absl parses
# the flags: so a plain --verbose is looked for in sys.argv.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0' if '--verbose' in sys.argv else '2'

from absl import app, flags, logging  # noqa: E402

from tf_prune import sparsity_report  # noqa: E402
from tf_prune import structured  # noqa: E402

flags.DEFINE_bool('json', False, 'Print JSON instead of a table')
flags.DEFINE_string('pruned', None,
                    'The model pruned with structure=channel (a training '
                    'directory or .keras file) that the model given is the '
                    'shrunk model of: report channels, parameters and FLOPs '
                    'per layer, before and after')
flags.DEFINE_bool('verbose', False, "Also print TensorFlow's logs and warnings")
FLAGS = flags.FLAGS


def _channel_report(shrunk):
    """The channel report of --pruned against `shrunk`, as text."""
    report = structured.channel_report(FLAGS.pruned, shrunk)
    if FLAGS.json:
        return json.dumps(report.as_dict(), indent=1)
    return report.format_table()


def _sparsity_report(path):
    """The zeros of every weight tensor of `path`, as text."""
    rows = sparsity_report.report(path)
    if not FLAGS.json:
        return sparsity_report.format_table(rows)
    total = sparsity_report.total(rows)
    return json.dumps({
        'tensors': [{'name': r.name, 'shape': list(r.shape),
                     'nonzeros': r.nonzeros, 'size': r.size,
                     'sparsity': r.sparsity} for r in rows],
        'total': {'nonzeros': total.nonzeros, 'size': total.size,
                  'sparsity': total.sparsity}}, indent=1)


def main(argv):
    if not FLAGS.verbose:
        # Loading notes from TF's savers; the user cannot act on them.
        logging.set_verbosity(logging.ERROR)
        warnings.simplefilter('ignore')
    if len(argv) != 2:
        print('inspect_sparsity: give one model file or directory',
              file=sys.stderr)
        return 2
    try:
        print(_channel_report(argv[1]) if FLAGS.pruned
              else _sparsity_report(argv[1]))
    except structured.NotChannelPruned as error:
        print(f'inspect_sparsity: --pruned takes a model pruned with '
              f'structure=channel (a training directory or .keras file), '
              f'and {error.reason}', file=sys.stderr)
        return 2
    except ValueError as error:  # ModelFileError included
        print(f'inspect_sparsity: {error}', file=sys.stderr)
        return 2
    except OSError as error:  # permissions, say
        print(f'inspect_sparsity: cannot read {error.filename or argv[1]}: '
              f'{error.strerror or error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    app.run(main)
