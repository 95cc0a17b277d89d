"""Times update_mask against contrib's top_k threshold and a reduce_max pass.

For 1M, 4M and 16M float32 elements at sparsity 0.5 and 0.9, in one process:
- update_mask: tf_prune's exact threshold and mask (radix select);
- top_k: contrib r1.15's algorithm (sort all of |w|, take the k-th value);
- reduce_max: one reduce_max(abs(w)) pass, the memory-bandwidth floor.
Each is a tf.function on a weight already in memory. update_mask and
reduce_max are timed in interleaved rounds so machine noise hits them alike;
top_k, seconds per call at 16M, in its own rounds after them. The medians are
reported with update_mask's ratio to the other two. It also checks that
update_mask's threshold and mask equal top_k's. The rows, the settings and
the machine go to `--json`.

Usage: python benchmarks/mask_update.py [--rounds=21] [--top_k_rounds=3]
  [--json=benchmarks/results/mask_update.json]
"""

import json
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

import machine  # noqa: E402
import render_docs  # noqa: E402
import tf_prune  # noqa: E402
from tf_prune.core import atomic  # noqa: E402

flags.DEFINE_integer('rounds', 21, 'Timed rounds of update_mask and reduce_max.')
flags.DEFINE_integer('top_k_rounds', 3, 'Timed rounds of the top_k reference.')
flags.DEFINE_string('json', 'benchmarks/results/mask_update.json',
                    'Where to write the figures ("" for nowhere).')
FLAGS = flags.FLAGS

SIZES = (1 << 20, 1 << 22, 1 << 24)
SPARSITIES = (0.5, 0.9)


@tf.function
def update_mask(weights, sparsity):
    return tf_prune.update_mask(weights, sparsity)


@tf.function
def top_k_reference(weights, sparsity):
    magnitudes = tf.reshape(tf.abs(weights), [-1])
    n = tf.size(magnitudes)
    k = tf.cast(tf.round(tf.cast(n, tf.float32) * (1.0 - sparsity)), tf.int32)
    threshold = tf.gather(tf.math.top_k(magnitudes, k=n).values, k - 1)
    return threshold, tf.cast(tf.abs(weights) >= threshold, weights.dtype)


@tf.function
def reduce_max_pass(weights, sparsity):
    del sparsity
    return tf.reduce_max(tf.abs(weights))


def _seconds(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    # CPU ops finish before the call returns; reading a scalar makes sure.
    float(tf.nest.flatten(result)[0])
    return time.perf_counter() - start


def _median_ms(fns, args, rounds):
    """Median milliseconds of each fn, timed in interleaved rounds."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(_seconds(fn, *args))
    return {name: 1000 * float(np.median(t)) for name, t in times.items()}


def measure(weights, sparsity, rounds, top_k_rounds):
    """Median milliseconds of update_mask, reduce_max and top_k.

    update_mask and reduce_max, whose ratio is the goal, alternate round by
    round; the seconds-long top_k sorts run in rounds of their own after them,
    so their large allocations do not land between the other two.
    """
    args = (weights, tf.constant(sparsity, tf.float32))
    for fn in (update_mask, reduce_max_pass, top_k_reference):
        fn(*args)  # trace and warm up
    ms = _median_ms({'update_mask': update_mask, 'reduce_max': reduce_max_pass},
                    args, rounds)
    ms.update(_median_ms({'top_k': top_k_reference}, args, top_k_rounds))
    return ms


def check_identical(weights, sparsity):
    args = (weights, tf.constant(sparsity, tf.float32))
    threshold, mask = update_mask(*args)
    expected_threshold, expected_mask = top_k_reference(*args)
    return (float(threshold) == float(expected_threshold)
            and bool(tf.reduce_all(mask == expected_mask)))


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    print(render_docs.MASK_UPDATE_HEADER)
    rows = []
    for n in SIZES:
        weights = tf.constant(rng.standard_normal(n).astype(np.float32))
        for sparsity in SPARSITIES:
            ms = measure(weights, sparsity, FLAGS.rounds, FLAGS.top_k_rounds)
            rows.append({'elements': n, 'sparsity': sparsity,
                         **{f'{name}_ms': round(value, 3)
                            for name, value in ms.items()},
                         'identical': check_identical(weights, sparsity)})
            print(render_docs.mask_update_row(rows[-1]), flush=True)
    if FLAGS.json:
        atomic.write_bytes(FLAGS.json, (json.dumps(
            {'machine': machine.describe(), 'rounds': FLAGS.rounds,
             'top_k_rounds': FLAGS.top_k_rounds, 'rows': rows},
            indent=2) + '\n').encode())


if __name__ == '__main__':
    app.run(main)
