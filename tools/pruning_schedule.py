"""Prints contrib's sparsity schedule for a --pruning_hparams spec.

    python tools/pruning_schedule.py \\
        --pruning_hparams=target_sparsity=0.9,sparsity_function_end_step=1000 \\
        --steps=0,250,500,1000 [--weights=conv1/kernel,fc/kernel]

An invalid spec prints one line on stderr and exits with status 2.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import app, flags  # noqa: E402

import tf_prune  # noqa: E402

tf_prune.flags.DEFINE_pruning_hparams()
flags.DEFINE_list('steps', ['0', '25', '50', '75', '100'], 'Global steps.')
flags.DEFINE_list('weights', [], 'Weight names (layer/weight) for per-weight '
                  'targets from weight_sparsity_map.')
FLAGS = flags.FLAGS


def main(argv):
    del argv
    try:
        hparams = tf_prune.flags.pruning_hparams_from_flags()
        steps = [int(s) for s in FLAGS.steps]
        rows = [[tf_prune.compute_sparsity(hparams, s)]
                + [tf_prune.weight_sparsity(hparams, w, s) for w in FLAGS.weights]
                for s in steps]
    except ValueError as e:
        print(f'pruning_schedule: {e}', file=sys.stderr)
        return 2
    print('\t'.join(['step', 'sparsity'] + FLAGS.weights))
    for step, row in zip(steps, rows):
        print('\t'.join([str(step)] + [f'{float(v):.6f}' for v in row]))
    return 0


if __name__ == '__main__':
    app.run(main)
