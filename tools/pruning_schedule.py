"""Prints contrib's sparsity schedule for a --pruning_hparams spec.

    python tools/pruning_schedule.py \\
        --pruning_hparams=target_sparsity=0.9,sparsity_function_end_step=1000 \\
        --steps=0,250,500,1000 [--weights=conv1/kernel,fc/kernel]

An invalid spec, step or weight name prints one line on stderr and exits
with status 2. TensorFlow's own logs and warnings show with --verbose.
"""

import os
import sys
import warnings

# TensorFlow reads its C++ log level when it is imported, before absl parses
# the flags: so a plain --verbose is looked for in sys.argv.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0' if '--verbose' in sys.argv else '2'

from absl import app, flags, logging  # noqa: E402

import tf_prune  # noqa: E402

tf_prune.flags.DEFINE_pruning_hparams()
flags.DEFINE_list('steps', ['0', '25', '50', '75', '100'], 'Global steps.')
flags.DEFINE_list('weights', [], 'Weight names (layer/weight) for per-weight '
                  'targets from weight_sparsity_map.')
flags.DEFINE_bool('verbose', False, "Also print TensorFlow's logs and warnings")
FLAGS = flags.FLAGS

# The schedule casts the step to int32, as contrib did: a larger one wraps.
_MAX_STEP = 2**31 - 1


def _flag(name):
    """A list flag as the user gave it, for messages."""
    return f'--{name}={",".join(FLAGS[name].value)}'


def _steps():
    for text in FLAGS.steps:
        if not text.isdecimal() or int(text) > _MAX_STEP:
            raise ValueError(f'{_flag("steps")}: {text!r} is not a step (give '
                             f'comma-separated integers from 0 to {_MAX_STEP})')
    return [int(text) for text in FLAGS.steps]


def _weight_sparsity(hparams, name, step):
    if not name:
        raise ValueError(f"{_flag('weights')}: '' is not a weight name (give "
                         f"comma-separated layer/weight names)")
    try:
        return tf_prune.weight_sparsity(hparams, name, step)
    except ValueError as error:  # two weight_sparsity_map patterns match
        raise ValueError(f'{_flag("weights")}: {error}') from error


def main(argv):
    del argv
    if not FLAGS.verbose:
        # TensorFlow's Python logs and warnings, as its C++ ones above.
        logging.set_verbosity(logging.ERROR)
        warnings.simplefilter('ignore')
    try:
        hparams = tf_prune.flags.pruning_hparams_from_flags()
        steps = _steps()
        rows = [[tf_prune.compute_sparsity(hparams, s)]
                + [_weight_sparsity(hparams, w, s) for w in FLAGS.weights]
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
