"""Training-step time with tf_prune's pruning against the same model unpruned.

The model is the CNN of tfmot's MNIST pruning example: Conv 32@5x5, max-pool,
batch norm, Conv 64@5x5, max-pool, Dense 1024, dropout 0.4, Dense 10, on
28x28x1 inputs, batch 128, Adam, on the CPU. Three copies train side by side
in one process: dense, and pruned (PruningCallback, masks updated from step 0
towards 0.9) at pruning_frequency 10 and 100. After a warm-up `fit` each,
they take turns over `--rounds` rounds of `--steps` steps, each round
starting with the next model; every round holds mask updates at both
frequencies. The statistic is the mean step time (total time / steps; a
median would hide the steps that update masks), and each pruned copy's ratio
to dense's.

This 2-core machine stalls now and then for about a second, whatever runs
(two identical dense models, timed side by side, each had such rounds).
So the mean is given twice: over all rounds, and over the rounds without a
stall, a stall being a round more than 25% slower than that model's median
round; the number of rounds dropped is reported.

Usage: python benchmarks/train_overhead.py [--rounds=10] [--steps=100]
  [--json=benchmarks/results/train_overhead.json]
"""

import json
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import tf_prune  # noqa: E402
from tf_prune.core import atomic  # noqa: E402

flags.DEFINE_integer('rounds', 10, 'Timed rounds; each trains every model once.')
flags.DEFINE_integer('steps', 100, 'Training steps per model per round.')
flags.DEFINE_integer('warmup_steps', 20, 'Untimed steps per model first.')
flags.DEFINE_string('json', 'benchmarks/results/train_overhead.json',
                    'Where to write the figures ("" for nowhere).')
FLAGS = flags.FLAGS

BATCH = 128
FREQUENCIES = (10, 100)


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
    """(name, compiled model, fit callbacks) for dense and each frequency."""
    keras.utils.set_random_seed(0)
    contestants = [('dense', tfmot_mnist_cnn(), [])]
    for frequency in FREQUENCIES:
        spec = _spec(frequency)
        contestants.append((f'pruned, frequency {frequency}',
                            tf_prune.prune(tfmot_mnist_cnn(), spec),
                            [tf_prune.PruningCallback(spec)]))
    for _, model, _ in contestants:
        model.compile(keras.optimizers.Adam(1e-3),
                      'sparse_categorical_crossentropy')
    return contestants


def _train(model, callbacks, x, y, steps):
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, steps_per_epoch=steps,
              shuffle=False, verbose=0, callbacks=callbacks)
    return time.perf_counter() - start


def _mean_step_ms(round_seconds):
    """((mean over all rounds, 0), (mean without stalled rounds, dropped))."""
    times = np.array(round_seconds)
    steady = times[times <= 1.25 * np.median(times)]
    per_step = 1000.0 / FLAGS.steps
    return ((times.mean() * per_step, 0),
            (steady.mean() * per_step, int(times.size - steady.size)))


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    x = rng.random((FLAGS.steps * BATCH, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, size=FLAGS.steps * BATCH)
    contestants = _contestants()
    for _, model, callbacks in contestants:
        _train(model, callbacks, x[:FLAGS.warmup_steps * BATCH],
               y[:FLAGS.warmup_steps * BATCH], FLAGS.warmup_steps)
    rounds = {name: [] for name, _, _ in contestants}
    for round_index in range(FLAGS.rounds):
        # Each round starts with the next model, so slow spells of a noisy
        # machine fall on every model alike.
        shift = round_index % len(contestants)
        for name, model, callbacks in contestants[shift:] + contestants[:shift]:
            rounds[name].append(_train(model, callbacks, x, y, FLAGS.steps))
    steps = FLAGS.rounds * FLAGS.steps
    means = {name: _mean_step_ms(times) for name, times in rounds.items()}
    rows = []
    for name, model, callbacks in contestants:
        (all_ms, _), (steady_ms, dropped) = means[name]
        row = {'model': name, 'mean_step_ms': round(all_ms, 2),
               'ratio_to_dense': round(all_ms / means['dense'][0][0], 3),
               'steady_mean_step_ms': round(steady_ms, 2),
               'steady_ratio_to_dense': round(
                   steady_ms / means['dense'][1][0], 3),
               'stalled_rounds_dropped': dropped}
        if callbacks:
            pruning = callbacks[0].pruning
            frequency = int(name.rsplit(' ', 1)[1])
            # Updates fall on multiples of the frequency (begin step 0).
            row['mask_updates'] = ((FLAGS.warmup_steps + steps) // frequency
                                   - FLAGS.warmup_steps // frequency)
            row['final_sparsity'] = round(float(
                pruning.model_sparsity.numpy()), 4)
        rows.append(row)
    print(f'{steps} timed steps per model, batch {BATCH}, '
          f'{os.cpu_count()} CPUs\n')
    print('| model | mean step, all rounds (ms) | ratio | mean step, rounds '
          'without a stall (ms) | ratio | stalled rounds dropped | mask '
          'updates timed |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for row in rows:
        print(f"| {row['model']} | {row['mean_step_ms']:.1f} | "
              f"{row['ratio_to_dense']:.3f} | {row['steady_mean_step_ms']:.1f} | "
              f"{row['steady_ratio_to_dense']:.3f} | "
              f"{row['stalled_rounds_dropped']} | {row.get('mask_updates', '-')} |")
    if FLAGS.json:
        atomic.write_bytes(FLAGS.json, (json.dumps(
            {'timed_steps': steps, 'batch': BATCH, 'rounds': FLAGS.rounds,
             'rows': rows}, indent=2) + '\n').encode())


if __name__ == '__main__':
    app.run(main)
