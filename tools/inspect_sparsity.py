r"""Prints the zeros of every weight tensor of a model file, and the total.

    python tools/inspect_sparsity.py /tmp/pruning_stripped.pb
    python tools/inspect_sparsity.py --json model.tflite

Reads .pb, .tflite, .keras, SavedModel and checkpoint directories (TF1 or
tf_prune training directories). The total counts every weight tensor,
biases and dense layers included.

With --m_by_n=N:M (2:4, say), a column says whether each tensor holds at
most N non-zeros in every M consecutive values along its input-channel
axis, the pattern of `nm_sparsity=N:M`; the total row says whether all do:

    python tools/inspect_sparsity.py --m_by_n=2:4 model.tflite

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
from tf_prune.core import hparams  # noqa: E402

flags.DEFINE_bool('json', False, 'Print JSON instead of a table')
flags.DEFINE_string('pruned', None,
                    'The model pruned with structure=channel (a training '
                    'directory or .keras file) that the model given is the '
                    'shrunk model of: report channels, parameters and FLOPs '
                    'per layer, before and after')
flags.DEFINE_string(
    'm_by_n', None,
    'N:M, as 2:4: add a column saying whether each tensor has at most N '
    'non-zeros in every M consecutive values along its input-channel axis: '
    'the last axis in .tflite files (TFLite layouts: Conv2D [out, h, w, in], '
    'FullyConnected [out, in]), the second to last in the TF and Keras '
    'tensors of other files ([..., in, out]); a shorter last group may hold '
    'N too; tensors of rank < 2 show "-". As tfmot\'s '
    'check_sparsity_m_by_n tool checks .tflite files, except: its '
    '--m_by_n=M,N counts M zeros of N (2,4 is the same pattern as 2:4); it '
    'checks every tensor of the interpreter not named like an activation '
    '(biases along their only axis), this only the weight tensors listed; '
    'it reads a sparse-encoded tensor\'s stored values as if dense, this '
    'decodes them; and it reads .tflite files only')
flags.DEFINE_bool('verbose', False, "Also print TensorFlow's logs and warnings")
FLAGS = flags.FLAGS


def _channel_report(shrunk):
    """The channel report of --pruned against `shrunk`, as text."""
    report = structured.channel_report(FLAGS.pruned, shrunk)
    if FLAGS.json:
        return json.dumps(report.as_dict(), indent=1)
    return report.format_table()


def _m_by_n():
    """--m_by_n as (n, m), or None without it.

    Raises:
      ValueError: it is not N:M with integers 1 <= N < M.
    """
    if FLAGS.m_by_n is None:
        return None
    if FLAGS.pruned:
        raise ValueError('--m_by_n checks the tensors of the sparsity report, '
                         'which --pruned replaces; drop one of them')
    return hparams.parse_n_of_m(FLAGS.m_by_n, '--m_by_n', optional=False)


def _json_row(row, n_of_m):
    """One row of the JSON report; `m_by_n` only when checked for."""
    fields = {'nonzeros': row.nonzeros, 'size': row.size,
              'sparsity': row.sparsity}
    if n_of_m is not None:
        fields['m_by_n'] = row.n_of_m
    return fields


def _sparsity_report(path, n_of_m):
    """The zeros of every weight tensor of `path`, as text."""
    rows = sparsity_report.report(path, n_of_m)
    if not FLAGS.json:
        return sparsity_report.format_table(rows, n_of_m)
    report = {'tensors': [{'name': r.name, 'shape': list(r.shape),
                           **_json_row(r, n_of_m)} for r in rows],
              'total': _json_row(sparsity_report.total(rows), n_of_m)}
    if n_of_m is not None:
        report['m_by_n'] = '%d:%d' % n_of_m
    return json.dumps(report, indent=1)


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
        n_of_m = _m_by_n()
        print(_channel_report(argv[1]) if FLAGS.pruned
              else _sparsity_report(argv[1], n_of_m))
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
