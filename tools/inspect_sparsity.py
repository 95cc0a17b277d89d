r"""Prints the zeros of every weight tensor of a model file, and the total.

    python tools/inspect_sparsity.py /tmp/pruning_stripped.pb
    python tools/inspect_sparsity.py --json model.tflite

Reads .pb, .tflite, .keras, SavedModel and checkpoint directories (TF1 or
tf_prune training directories). The total counts every weight tensor,
biases and dense layers included. Bad input prints one line on stderr and
exits with status 2.
"""

import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app, flags  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_prune  # noqa: E402
from tf_prune import sparsity_report  # noqa: E402

flags.DEFINE_bool('json', False, 'Print JSON instead of a table')
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) != 2:
        print('inspect_sparsity: give one model file or directory',
              file=sys.stderr)
        return 2
    tf.get_logger().setLevel('ERROR')
    try:
        rows = sparsity_report.report(argv[1])
    except (tf_prune.StripError, ValueError, OSError) as error:
        print(f'inspect_sparsity: {error}', file=sys.stderr)
        return 2
    if FLAGS.json:
        total = sparsity_report.total(rows)
        print(json.dumps({
            'tensors': [{'name': r.name, 'shape': list(r.shape),
                         'nonzeros': r.nonzeros, 'size': r.size,
                         'sparsity': r.sparsity} for r in rows],
            'total': {'nonzeros': total.nonzeros, 'size': total.size,
                      'sparsity': total.sparsity}}, indent=1))
    else:
        print(sparsity_report.format_table(rows))
    return 0


if __name__ == '__main__':
    app.run(main)
