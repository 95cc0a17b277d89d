"""Training-step time with tf_prune's pruning against the same model unpruned.

The model is the CNN of tfmot's MNIST pruning example: Conv 32@5x5, max-pool,
batch norm, Conv 64@5x5, max-pool, Dense 1024, dropout 0.4, Dense 10, on
28x28x1 inputs, batch 128, Adam, on the CPU. Three copies train side by side
in one process: dense, and pruned (PruningCallback, masks updated from step 0
towards 0.9) at pruning_frequency 10 and 100. After `--warmup_steps` untimed
steps each, they train `--rounds` rounds of `--steps` steps per model.

What is paired. A round is cut into turns of `--steps_per_turn` steps, one
`fit` call each, in the order pruned 10, dense, pruned 100, then pruned 100,
dense, pruned 10, and so on: every pruned turn is next to a dense turn, and
each pruned model comes before dense as often as after it. A model's time in
a round is the sum of its turns' step times. For each pruned model m and
round r, ratio_r = m's time in round r / dense's time in round r
(`paired.py`). Both sides of ratio_r are measured over the same stretch of
wall-clock time, in slices a fraction of a second apart, so a slow spell of
the machine (seconds long, on a busy CPU) lengthens both. The statistic is the
median of ratio_r over the rounds, given with its 25th and 75th percentiles,
minimum and maximum. The mean step time over all rounds (total time / steps,
mask-update steps included) and the ratio of those means are given too; a
slow spell counts in full in them.

Mask updates. With begin step 0 and frequency f, a model's masks update at
the end of each step whose optimizer step (counted after the step) is a
multiple of f. `--steps` must be a multiple of 100, so every round holds
steps/10 and steps/100 updates, the same number in every round. The default
warm-up of 100 steps holds the first update at both frequencies.

Timing. A step is timed from the on_train_batch_begin to the
on_train_batch_end of a clock callback listed last: PruningCallback's
on_train_batch_end (the gate and the mask update) is inside the clock, the
start of each `fit` call is not (nor PruningCallback's sparsity recount on
the first step of each call, which a single long `fit` does once).

Usage: python benchmarks/train_overhead.py [--rounds=10] [--steps=100]
  [--steps_per_turn=10] [--json=benchmarks/results/train_overhead.json]
"""

import json
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

import machine  # noqa: E402
import paired  # noqa: E402
import render_docs  # noqa: E402
import tf_prune  # noqa: E402
from tf_prune.core import atomic  # noqa: E402

flags.DEFINE_integer('rounds', 10, 'Timed rounds; each trains every model.')
flags.DEFINE_integer('steps', 100, 'Training steps per model per round, a '
                     'multiple of 100.')
flags.DEFINE_integer('steps_per_turn', 10, 'Training steps of each turn; '
                     'divides --steps.')
flags.DEFINE_integer('warmup_steps', 100, 'Untimed steps per model first.')
flags.DEFINE_string('json', 'benchmarks/results/train_overhead.json',
                    'Where to write the figures ("" for nowhere).')
FLAGS = flags.FLAGS

BATCH = 128
FREQUENCIES = (10, 100)
DENSE = 'dense'


def tfmot_mnist_cnn(keras_module=keras):
    """The CNN of tfmot's MNIST pruning example.

    Args:
      keras_module: Keras 3 (`keras`), or `tf.keras` as tfmot needs it
        (tf_keras, once tfmot is imported).

    Returns:
      The model, not compiled.
    """
    layers = keras_module.layers
    inputs = keras_module.Input((28, 28, 1))
    x = layers.Conv2D(32, 5, padding='same', activation='relu',
                      name='conv1')(inputs)
    x = layers.MaxPooling2D(2, 2, padding='same')(x)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(64, 5, padding='same', activation='relu',
                      name='conv2')(x)
    x = layers.MaxPooling2D(2, 2, padding='same')(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation='relu', name='dense1')(x)
    x = layers.Dropout(0.4)(x)
    outputs = layers.Dense(10, activation='softmax', name='dense2')(x)
    return keras_module.Model(inputs, outputs)


def _spec(frequency):
    return (f'target_sparsity=0.9,begin_pruning_step=0,pruning_frequency='
            f'{frequency},sparsity_function_end_step=1000')


def _contestants():
    """[(name, compiled model, fit callbacks)]: dense, then each frequency."""
    keras.utils.set_random_seed(0)
    contestants = [(DENSE, tfmot_mnist_cnn(), [])]
    for frequency in FREQUENCIES:
        spec = _spec(frequency)
        contestants.append((f'pruned, frequency {frequency}',
                            tf_prune.prune(tfmot_mnist_cnn(), spec),
                            [tf_prune.PruningCallback(spec)]))
    for _, model, _ in contestants:
        model.compile(keras.optimizers.Adam(1e-3),
                      'sparse_categorical_crossentropy')
    return contestants


class _StepClock(keras.callbacks.Callback):
    """Sums the time from each step's on_train_batch_begin to its end."""

    seconds = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds += time.perf_counter() - self._start


def _train(model, callbacks, dataset, steps):
    """Seconds of `steps` training steps, in one `fit` call."""
    clock = _StepClock()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False,
              verbose=0, callbacks=[*callbacks, clock])
    return clock.seconds


def _turn_order(contestants, turn):
    """Dense between the pruned models; reversed on every other turn."""
    dense, pruned = contestants[0], contestants[1:]
    order = pruned[:len(pruned) // 2] + [dense] + pruned[len(pruned) // 2:]
    return order if turn % 2 == 0 else order[::-1]


def main(argv):
    del argv
    if FLAGS.steps % max(FREQUENCIES) or FLAGS.steps % FLAGS.steps_per_turn:
        raise app.UsageError(f'--steps must be a multiple of '
                             f'{max(FREQUENCIES)} and of --steps_per_turn')
    rng = np.random.default_rng(0)
    x = rng.random((10 * BATCH, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, size=10 * BATCH)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH).repeat()
    contestants = _contestants()
    for _, model, callbacks in contestants:
        _train(model, callbacks, dataset, FLAGS.warmup_steps)
    turns = FLAGS.steps // FLAGS.steps_per_turn
    round_ms = {name: [] for name, _, _ in contestants}
    for round_index in range(FLAGS.rounds):
        seconds = dict.fromkeys(round_ms, 0.0)
        for turn in range(round_index * turns, (round_index + 1) * turns):
            for name, model, callbacks in _turn_order(contestants, turn):
                seconds[name] += _train(model, callbacks, dataset,
                                        FLAGS.steps_per_turn)
        for name, value in seconds.items():
            round_ms[name].append(round(1000 * value, 3))
    rows = paired.summary_rows(round_ms, FLAGS.steps, DENSE)
    timed = FLAGS.rounds * FLAGS.steps
    for row, (name, _, callbacks) in zip(rows, contestants):
        if callbacks:
            frequency = int(name.rsplit(' ', 1)[1])
            row['mask_updates'] = ((FLAGS.warmup_steps + timed) // frequency
                                   - FLAGS.warmup_steps // frequency)
            row['final_sparsity'] = round(float(
                callbacks[0].pruning.model_sparsity.numpy()), 4)
    ratios = {name: [round(r, 4) for r in
                     paired.round_ratios(times, round_ms[DENSE])]
              for name, times in round_ms.items() if name != DENSE}
    result = {
        'machine': machine.describe(), 'batch': BATCH,
        'rounds': FLAGS.rounds, 'steps_per_round': FLAGS.steps,
        'steps_per_turn': FLAGS.steps_per_turn,
        'warmup_steps': FLAGS.warmup_steps, 'timed_steps': timed,
        'turn_order': [name for name, _, _ in _turn_order(contestants, 0)],
        'round_ms': round_ms, 'round_ratios': ratios, 'rows': rows}
    print(render_docs.train_overhead_table(result))
    if FLAGS.json:
        atomic.write_bytes(FLAGS.json,
                           (json.dumps(result, indent=2) + '\n').encode())


if __name__ == '__main__':
    app.run(main)
