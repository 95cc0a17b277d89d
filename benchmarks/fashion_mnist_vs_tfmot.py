r"""tf_prune against tfmot 0.8.1 on Fashion-MNIST: accuracy, step time, sparsity, TFLite bytes.

The model is the CNN of tfmot's MNIST pruning example
(`train_overhead.tfmot_mnist_cnn`), trained with Adam on the same tf.data
pipeline (batch 128, full batches only, reshuffled each epoch) for
`--epochs` epochs in every run. The runs: dense, then for each target
sparsity (0.5, 0.75, 0.9, 0.95) tf_prune and tfmot with the same schedule:
polynomial from 0 to the target over the first two thirds of the steps,
exponent 3, a mask update every 100 steps, no updates after that. tf_prune
gets it as contrib's hparams, tfmot as `PolynomialDecay`; tfmot needs
tf_keras, which importing it switches `tf.keras` to, so its model is built
with `tf.keras` after the import.

Each run is its own process, and they take turns: all start, load and
build, then train `--turn_steps` steps each in round-robin, one at a time,
until all are trained; then each evaluates and converts, one at a time.
This 2-core machine has slow spells of seconds (steps then take twice as
long), and turns of a few seconds spread them over all runs alike, where
runs one after the other would each get their own share.

Per run: test accuracy; the mean training step time over all steps but the
first (which traces the step function), mask updates included, timed from
the first callback's `on_train_batch_begin` to the last callback's
`on_train_batch_end`; its ratio to dense's; the final sparsity of the four
pruned kernels; TFLite bytes of the stripped model, plain and
sparse-encoded, each raw and gzipped.

Writes `--results_dir`/fashion_mnist_vs_tfmot.{json,md,png}.

    python benchmarks/fashion_mnist_vs_tfmot.py [--epochs=6]
"""

import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# The examples' `support` module: the Fashion-MNIST loader, file sizes.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'examples'))

from absl import app, flags, logging  # noqa: E402

flags.DEFINE_integer('epochs', 6, 'Training epochs of every run')
flags.DEFINE_integer('turn_steps', 50, 'Training steps of each turn')
flags.DEFINE_list('targets', ['0.5', '0.75', '0.9', '0.95'],
                  'Target sparsities')
flags.DEFINE_string('data_dir', '/usr/share/datasets/fashion-mnist',
                    'Directory of the Fashion-MNIST idx files')
flags.DEFINE_string('results_dir', 'benchmarks/results', 'Where results go')
flags.DEFINE_string('run', None, 'Internal: run one configuration '
                    '(dense, tf_prune:<target>, tfmot:<target>) and write '
                    'its figures as JSON to --out')
flags.DEFINE_string('out', None, 'Internal: the JSON file of --run')
flags.DEFINE_list('turn_fds', None, 'Internal: the file descriptors a run '
                  'reads its turns from and reports to')
FLAGS = flags.FLAGS

BATCH = 128
FREQUENCY = 100
EXPONENT = 3
PRUNED_LAYERS = ('conv1', 'conv2', 'dense1', 'dense2')
RESULTS_NAME = 'fashion_mnist_vs_tfmot'


def _schedule_end(steps):
    return (2 * steps) // 3


def _data(tf):
    """The training batches (tf.data) and the test arrays."""
    import support  # pylint: disable=import-outside-toplevel
    (x_train, y_train), (x_test, y_test) = support.load_fashion_mnist(
        FLAGS.data_dir)
    scale = support.scale_images
    train = (tf.data.Dataset.from_tensor_slices((scale(x_train), y_train))
             .shuffle(len(x_train), seed=0, reshuffle_each_iteration=True)
             .batch(BATCH, drop_remainder=True).prefetch(2))
    return train, len(x_train) // BATCH, (scale(x_test), y_test)


class _Turns:
    """This run's side of the round-robin: wait for a turn, report its end."""

    def __init__(self, fds):
        self._read, self._write = (int(fd) for fd in fds)

    def _send(self, message):
        os.write(self._write, message)
        if os.read(self._read, 1) != b'g':
            raise SystemExit('the benchmark driver went away')

    def next_turn(self):
        self._send(b't')

    def finish_training(self):
        self._send(b'e')


def _turn_taker(callback_base, turns):
    """A callback that hands the machine over every `--turn_steps` steps."""

    class TakeTurns(callback_base):
        steps = 0

        def on_train_batch_begin(self, batch, logs=None):
            if self.steps % FLAGS.turn_steps == 0:
                turns.next_turn()
            self.steps += 1

    return TakeTurns()


def _step_timers(callback_base):
    """Two callbacks: the first starts each step's clock, the last stops it."""
    durations = []

    class Start(callback_base):
        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

    start = Start()

    class Stop(callback_base):
        def on_train_batch_end(self, batch, logs=None):
            durations.append(time.perf_counter() - start.started)

    return start, Stop(), durations


def _tflite_sizes(converter_for):
    """{plain, sparse}: (bytes, gzipped bytes) of two conversions."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import support  # pylint: disable=import-outside-toplevel
    return {kind: support.sizes(converter_for(optimizations))
            for kind, optimizations in (
                ('plain', []),
                ('sparse', [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]))}


def _kernel_sparsity(model):
    import numpy as np  # pylint: disable=import-outside-toplevel
    kernels = [np.asarray(model.get_layer(name).kernel)
               for name in PRUNED_LAYERS]
    zeros = sum(int(np.sum(k == 0)) for k in kernels)
    return zeros / sum(k.size for k in kernels)


def _run_keras3(library, target, turns):
    """dense or tf_prune, in Keras 3."""
    import keras  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import tf_prune  # pylint: disable=import-outside-toplevel
    from train_overhead import tfmot_mnist_cnn  # pylint: disable=import-outside-toplevel

    train, steps_per_epoch, test = _data(tf)
    steps = FLAGS.epochs * steps_per_epoch

    keras.utils.set_random_seed(0)
    model = tfmot_mnist_cnn()
    callbacks = []
    if library == 'tf_prune':
        end = _schedule_end(steps)
        spec = (f'name=bench,initial_sparsity=0,target_sparsity={target},'
                f'begin_pruning_step=0,end_pruning_step={end},'
                f'sparsity_function_begin_step=0,'
                f'sparsity_function_end_step={end},'
                f'sparsity_function_exponent={EXPONENT},'
                f'pruning_frequency={FREQUENCY}')
        model = tf_prune.prune(model, spec)
        callbacks.append(tf_prune.PruningCallback(spec))
    model.compile(keras.optimizers.Adam(), 'sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    start, stop, durations = _step_timers(keras.callbacks.Callback)
    model.fit(train, epochs=FLAGS.epochs, verbose=0, callbacks=[
        _turn_taker(keras.callbacks.Callback, turns), start, *callbacks, stop])
    turns.finish_training()
    accuracy = model.evaluate(*test, batch_size=512, verbose=0)[1]
    stripped = tf_prune.strip_pruning(model)

    def convert(optimizations):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, 'model.tflite')
            tf_prune.export.tflite(stripped, path, sparse=bool(optimizations))
            with open(path, 'rb') as file:
                return file.read()

    return accuracy, durations, _kernel_sparsity(stripped), _tflite_sizes(
        convert)


def _run_tfmot(target, turns):
    """tfmot 0.8.1, in tf_keras."""
    # First: importing tfmot switches tf.keras to tf_keras.
    import tensorflow_model_optimization as tfmot  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from train_overhead import tfmot_mnist_cnn  # pylint: disable=import-outside-toplevel

    train, steps_per_epoch, test = _data(tf)
    steps = FLAGS.epochs * steps_per_epoch

    sparsity = tfmot.sparsity.keras
    tf.keras.utils.set_random_seed(0)
    end = _schedule_end(steps)
    model = sparsity.prune_low_magnitude(
        tfmot_mnist_cnn(tf.keras), pruning_schedule=sparsity.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=target, begin_step=0,
            end_step=end, power=EXPONENT, frequency=FREQUENCY))
    model.compile(tf.keras.optimizers.Adam(), 'sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    start, stop, durations = _step_timers(tf.keras.callbacks.Callback)
    model.fit(train, epochs=FLAGS.epochs, verbose=0, callbacks=[
        _turn_taker(tf.keras.callbacks.Callback, turns), start,
        sparsity.UpdatePruningStep(), stop])
    turns.finish_training()
    accuracy = model.evaluate(*test, batch_size=512, verbose=0)[1]
    stripped = sparsity.strip_pruning(model)

    def convert(optimizations):
        converter = tf.lite.TFLiteConverter.from_keras_model(stripped)
        converter.optimizations = optimizations
        return converter.convert()

    return accuracy, durations, _kernel_sparsity(stripped), _tflite_sizes(
        convert)


def _run_one(configuration, turns):
    """Trains one configuration in this process; returns its figures."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    library, _, target = configuration.partition(':')
    target = float(target) if target else 0.0
    if library == 'tfmot':
        accuracy, durations, final, tflite = _run_tfmot(target, turns)
    else:
        accuracy, durations, final, tflite = _run_keras3(library, target,
                                                         turns)
    timed = np.array(durations[1:])
    return {'library': library, 'target_sparsity': target,
            'test_accuracy': round(float(accuracy), 4),
            'mean_step_ms': round(1000 * float(timed.mean()), 2),
            'median_step_ms': round(1000 * float(np.median(timed)), 2),
            'timed_steps': int(timed.size),
            'final_sparsity': round(float(final), 4),
            'tflite_bytes': tflite['plain'][0],
            'tflite_gzipped_bytes': tflite['plain'][1],
            'sparse_tflite_bytes': tflite['sparse'][0],
            'sparse_tflite_gzipped_bytes': tflite['sparse'][1]}


def _configurations():
    runs = ['dense']
    for target in FLAGS.targets:
        runs += [f'tf_prune:{target}', f'tfmot:{target}']
    return runs


class _Run:
    """One configuration's process and the pipes its turns go through."""

    def __init__(self, configuration, directory):
        self.configuration = configuration
        self.out = os.path.join(directory, configuration.replace(':', '_')
                                + '.json')
        go_read, self._go = os.pipe()
        self._reports, report_write = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__),
             f'--run={configuration}', f'--out={self.out}',
             f'--epochs={FLAGS.epochs}', f'--turn_steps={FLAGS.turn_steps}',
             f'--data_dir={FLAGS.data_dir}',
             f'--turn_fds={go_read},{report_write}'],
            pass_fds=(go_read, report_write))
        os.close(go_read)
        os.close(report_write)

    def report(self):
        """Waits for the run's next report: b't' (turn over), b'e' (trained)."""
        message = os.read(self._reports, 1)
        if not message:
            raise SystemExit(f'{self.configuration} stopped with status '
                             f'{self.process.wait()}')
        return message

    def go(self):
        os.write(self._go, b'g')

    def result(self):
        if self.process.wait() != 0:
            raise SystemExit(f'{self.configuration} failed')
        with open(self.out) as file:
            return json.load(file)


def _run_all(configurations):
    """Runs every configuration in its own process, training in turns."""
    with tempfile.TemporaryDirectory() as directory:
        runs = [_Run(c, directory) for c in configurations]
        for run in runs:
            run.report()  # built, data loaded: waiting for its first turn
        training = list(runs)
        while training:
            for run in list(training):
                run.go()
                if run.report() == b'e':
                    training.remove(run)
                    print(f'{run.configuration}: trained', flush=True)
        rows = []
        for run in runs:
            run.go()  # evaluation and TFLite conversion, one at a time
            rows.append(run.result())
    return rows


def _markdown(rows, epochs, steps):
    import render_docs  # pylint: disable=import-outside-toplevel
    return (
        f'Fashion-MNIST, tfmot\'s MNIST CNN, Adam, batch {BATCH}, {epochs} '
        f'epochs ({steps} steps) per run, each run in its own process, the '
        f'runs training in turns of {FLAGS.turn_steps} steps, '
        f'{os.cpu_count()} CPUs. Step ratio: mean step time over dense\'s.'
        f'\n\n{render_docs.fashion_table(rows)}\n')


def _plot(rows, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for library, marker in (('tf_prune', 'o'), ('tfmot', 's')):
        points = [(r['final_sparsity'], 100 * r['test_accuracy'])
                  for r in rows if r['library'] == library]
        axes.plot(*zip(*points), marker=marker, label=library)
    dense = 100 * rows[0]['test_accuracy']
    axes.axhline(dense, color='gray', linestyle='--',
                 label=f'dense ({dense:.2f}%)')
    axes.set_xlabel('final sparsity of the pruned kernels')
    axes.set_ylabel('test accuracy (%)')
    axes.set_title('Fashion-MNIST, tfmot\'s MNIST CNN')
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    from tf_prune.core import atomic  # pylint: disable=import-outside-toplevel
    with atomic.atomic_output(path) as temporary:
        figure.savefig(temporary, format='png')


def main(argv):
    del argv
    if FLAGS.run:
        # TF's and the converter's notes, in every run alike.
        logging.set_verbosity(logging.ERROR)
        row = _run_one(FLAGS.run, _Turns(FLAGS.turn_fds))
        from tf_prune.core import atomic  # pylint: disable=import-outside-toplevel
        atomic.write_bytes(FLAGS.out, json.dumps(row).encode())
        return 0
    from tf_prune.core import atomic  # pylint: disable=import-outside-toplevel
    rows = _run_all(_configurations())
    for row in rows:
        row['step_ratio'] = round(row['mean_step_ms'] / rows[0]['mean_step_ms'],
                                  3)
    steps = rows[0]['timed_steps'] + 1
    for row in rows:
        print(f"{row['library']} {row['target_sparsity']:g}: accuracy "
              f"{row['test_accuracy']:.4f}, mean step {row['mean_step_ms']} "
              f"ms, ratio {row['step_ratio']}")
    import machine  # pylint: disable=import-outside-toplevel
    from importlib import metadata  # pylint: disable=import-outside-toplevel
    base = os.path.join(FLAGS.results_dir, RESULTS_NAME)
    atomic.write_bytes(base + '.json', (json.dumps(
        {'machine': machine.describe(),
         'tfmot_version': metadata.version('tensorflow-model-optimization'),
         'epochs': FLAGS.epochs, 'batch': BATCH, 'steps': steps,
         'turn_steps': FLAGS.turn_steps, 'frequency': FREQUENCY,
         'exponent': EXPONENT, 'schedule_end_step': _schedule_end(steps),
         'rows': rows}, indent=2) + '\n').encode())
    table = _markdown(rows, FLAGS.epochs, steps)
    atomic.write_bytes(base + '.md', table.encode())
    _plot(rows, base + '.png')
    print('\n' + table)
    return 0


if __name__ == '__main__':
    app.run(main)
