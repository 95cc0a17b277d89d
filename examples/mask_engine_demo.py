"""tf_prune's engine on its own: hparams, schedule, update gate and update_mask.

Parses `--pruning_hparams` with contrib's grammar, follows contrib's schedule
and update gate over `--steps` training steps for three weights, and prints the
target and reached sparsity at each mask update. Then it times one mask
update of a 16M-element weight against contrib's full sort. TensorFlow's own
logs and warnings (XLA's compilation among them) show with `--verbose`.

    python examples/mask_engine_demo.py \\
        --pruning_hparams=target_sparsity=0.9,pruning_frequency=100,sparsity_function_end_step=1000
"""

import os
import sys
import time
import warnings

# TensorFlow reads its C++ log level when it is imported, before absl parses
# the flags: so a plain --verbose is looked for in sys.argv.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0' if '--verbose' in sys.argv else '2'

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

import tf_prune  # noqa: E402

tf_prune.flags.DEFINE_pruning_hparams(
    default='name=demo,target_sparsity=0.9,pruning_frequency=100,'
            'sparsity_function_end_step=1000,'
            'weight_sparsity_map=[fc2/kernel:0.5],block_dims_map=[fc3:1x4]')
flags.DEFINE_integer('steps', 1200, 'Training steps to simulate.')
flags.DEFINE_bool('verbose', False, "Also print TensorFlow's logs and warnings")
FLAGS = flags.FLAGS

WEIGHTS = {'fc1/kernel': (784, 300), 'fc2/kernel': (300, 100),
           'fc3/kernel': (100, 10)}


def main(argv):
    del argv
    if not FLAGS.verbose:
        # TensorFlow's Python logs and warnings, as its C++ ones above.
        logging.set_verbosity(logging.ERROR)
        warnings.simplefilter('ignore')
    try:
        hparams = tf_prune.flags.pruning_hparams_from_flags()
    except ValueError as e:
        raise app.UsageError(str(e))
    print(f'hparams: {hparams}\n')
    rng = np.random.default_rng(0)
    weights = {name: tf.constant(rng.standard_normal(shape).astype(np.float32))
               for name, shape in WEIGHTS.items()}
    thresholds = {name: 0.0 for name in WEIGHTS}
    last_update = 0
    print('  step  ' + '  '.join(f'{name:>24s}' for name in WEIGHTS))
    for step in range(1, FLAGS.steps + 1):
        if not tf_prune.mask_update_due(hparams, step, last_update):
            continue
        last_update = step
        cells = []
        for name, weight in weights.items():
            target = tf_prune.weight_sparsity(hparams, name, step)
            thresholds[name], mask = tf_prune.update_mask(
                weight, target, thresholds[name],
                threshold_decay=hparams.threshold_decay,
                block_dims=tf_prune.block_dims(hparams, name),
                block_pooling_function=hparams.block_pooling_function,
                method=hparams.threshold_method, nbins=hparams.nbins)
            reached = 1.0 - float(tf.reduce_mean(mask))
            cells.append(f'target {float(target):.3f} got {reached:.3f}')
        print(f'{step:6d}  ' + '  '.join(f'{c:>24s}' for c in cells))

    big = tf.constant(rng.standard_normal(1 << 24).astype(np.float32))
    exact = tf.function(lambda w: tf_prune.update_mask(w, 0.9))
    exact(big)
    start = time.perf_counter()
    threshold, _ = exact(big)
    ms = 1000 * (time.perf_counter() - start)
    print(f'\nOne mask update of a 4096x4096 weight at 90%: {ms:.0f} ms '
          f'(threshold {float(threshold):.6f}); `make bench` compares it '
          'with contrib\'s full sort.')


if __name__ == '__main__':
    app.run(main)
