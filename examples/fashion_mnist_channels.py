r"""Removes half the channels of a small ResNet on Fashion-MNIST: channel pruning, then shrink.

    python examples/fashion_mnist_channels.py --train_dir=/tmp/fashion_mnist_channels

1. Trains `resnet()` (`--widths`: 32, 64 and 128 filters) dense for
   `--epochs` minus `--prune_epochs` epochs (Adam, a constant
   `--learning_rate` of 3e-3).
2. From those weights, two models train `--prune_epochs` more epochs each,
   on the same batches in the same order, with a fresh Adam whose learning
   rate decays from `--learning_rate` to 0 (cosine):
   - the dense baseline, unpruned: `--epochs` epochs in all;
   - a copy pruned with `structure=channel` (`tf_prune.prune` and
     `tf_prune.PruningCallback`): `--pruning_hparams` masks whole channels
     on contrib's schedule, its steps counted from the start of this phase.
     The default's masks reach the target at step 250 and stay as they are
     from then on (`end_pruning_step=250`): the model fine-tunes with the
     channels it keeps. Mask updates going on to the end (contrib's
     `end_pruning_step=-1`) may swap a channel back in late, whose BatchNorm
     moving statistics have decayed while it was masked, which hurts the
     accuracy in inference mode until they recover.
     TensorBoard logs (contrib's tags, the "Pruning" dashboard, the fraction
     of parameters and FLOPs kept) go to `--train_dir`.
3. `tf_prune.shrink` removes the masked channels: a plain, smaller Keras
   model that computes what the masked model computes.
4. Writes `<train_dir>/export/`: `dense.tflite`, `shrunk.tflite` (float32,
   `tf_prune.export.tflite`) and `dense.keras`, `shrunk.keras`.
5. Prints the test accuracy of the dense, masked and shrunk models (and of
   the shrunk TFLite file, run by LiteRT), parameters, FLOPs
   (`tf_prune.structured.cost`), the TFLite files' median LiteRT latency
   (XNNPACK, batch 1, 1 thread) and the per-layer channel counts.

The latency: both TFLite files run in LiteRT's `Interpreter` with its
default XNNPACK delegate, `num_threads=1`, one image. After 20 untimed
calls each, `--latency_rounds` rounds each time a turn of consecutive calls
of each model (dense first in even rounds, last in odd ones; a turn is
about 0.1 s of dense calls). A model's latency is the median of all its
timed calls; the ratio is the median over the rounds of shrunk's median
call in the round over dense's, so a slow spell of a shared CPU moves both.

With the defaults (8.5 minutes on 2 CPU cores), one run measured: dense
92.48%, shrunk 92.01% (-0.47 points) with 0.253x the parameters and 0.256x
the FLOPs, and LiteRT latency 0.276x dense's.
`benchmarks/channel_criteria.py` compares criteria and schedules on this
recipe.

Each run trains from the start and overwrites the exports (its TensorBoard
events join those of earlier runs in `--train_dir`). Fashion-MNIST is
read from Debian's `dataset-fashion-mnist` package (`--data_dir` to read it
elsewhere). Bad input prints one line and exits 2. TensorFlow's own logs
and warnings (and LiteRT's) show with `--verbose`.
"""

import contextlib
import math
import os
import sys
import time
import warnings

# TensorFlow reads its C++ log level when it is imported, before absl parses
# the flags: so a plain --verbose is looked for in sys.argv.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0' if '--verbose' in sys.argv else '2'

from absl import app, flags, logging  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import tf_prune  # noqa: E402
from tf_prune.structured import cost  # noqa: E402

import support  # noqa: E402

WIDTHS = (32, 64, 128)
LEARNING_RATE = 3e-3
DEFAULT_HPARAMS = (
    'name=fashion_mnist_channels,structure=channel,channel_criterion=l1,'
    'target_sparsity=0.5,pruning_frequency=25,sparsity_function_end_step=250,'
    'end_pruning_step=250')
tf_prune.flags.DEFINE_pruning_hparams(default=DEFAULT_HPARAMS)
flags.DEFINE_string('train_dir', '/tmp/fashion_mnist_channels',
                    'Where TensorBoard logs and the exports go')
flags.DEFINE_list('widths', [str(w) for w in WIDTHS],
                  "Filters of resnet()'s residual blocks, the stem's those "
                  'of the first')
flags.DEFINE_integer('epochs', 3, 'Training epochs of each model, in all')
flags.DEFINE_integer('prune_epochs', 2,
                     'The last epochs of --epochs, during which one copy '
                     'prunes and fine-tunes and the other trains on dense')
flags.DEFINE_integer('batch_size', 128, 'Training batch size')
flags.DEFINE_float('learning_rate', LEARNING_RATE,
                   "Adam's rate in the dense epochs, and where the second "
                   "phase's cosine decay starts")
flags.DEFINE_string('data_dir', support.DEFAULT_DATA_DIR,
                    'Directory of the Fashion-MNIST idx files')
flags.DEFINE_integer('train_examples', 0,
                     'Train on the first N training images (0: all 60,000)')
flags.DEFINE_integer('seed', 0, 'Seed of the weights and the shuffling')
flags.DEFINE_integer('latency_rounds', 15, 'Timed rounds of LiteRT calls')
flags.DEFINE_bool('verbose', False,
                  "Also print TensorFlow's and LiteRT's logs and warnings")
FLAGS = flags.FLAGS

TURN_SECONDS = 0.1


def _block(x, filters, stride, name):
    """conv-BN-ReLU-conv-BN, added to the input (projected by a 1x1 conv and
    BN when the shape changes), then ReLU."""
    layers = keras.layers
    y = layers.Conv2D(filters, 3, strides=stride, padding='same',
                      use_bias=False, name=f'{name}_conv1')(x)
    y = layers.BatchNormalization(name=f'{name}_bn1')(y)
    y = layers.ReLU(name=f'{name}_relu1')(y)
    y = layers.Conv2D(filters, 3, padding='same', use_bias=False,
                      name=f'{name}_conv2')(y)
    y = layers.BatchNormalization(name=f'{name}_bn2')(y)
    if stride != 1 or x.shape[-1] != filters:
        x = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                          name=f'{name}_proj')(x)
        x = layers.BatchNormalization(name=f'{name}_proj_bn')(x)
    y = layers.Add(name=f'{name}_add')([x, y])
    return layers.ReLU(name=f'{name}_out')(y)


def resnet(widths=WIDTHS):
    """A small ResNet for 28x28x1 images.

    Stem: Conv 3x3 (widths[0] filters), BN, ReLU, 2x2 max-pool (to 14x14).
    Then one residual block per width: the first keeps the stem's width and
    size (an identity shortcut, so its output channels are coupled with the
    stem's), each next one halves the size (stride 2) with a projection
    shortcut. Global average pooling, and a Dense softmax over the 10
    classes.

    Args:
      widths: the blocks' filters.

    Returns:
      A Functional model.
    """
    layers = keras.layers
    images = keras.Input((28, 28, 1), name='images')
    x = layers.Conv2D(widths[0], 3, padding='same', use_bias=False,
                      name='stem_conv')(images)
    x = layers.BatchNormalization(name='stem_bn')(x)
    x = layers.ReLU(name='stem_relu')(x)
    x = layers.MaxPooling2D(name='stem_pool')(x)
    for index, width in enumerate(widths):
        x = _block(x, width, 1 if index == 0 else 2, f'block{index + 1}')
    x = layers.GlobalAveragePooling2D(name='pool')(x)
    outputs = layers.Dense(10, activation='softmax', name='probabilities')(x)
    return keras.Model(images, outputs, name='fashion_mnist_resnet')


def compiled(model, learning_rate):
    """`model` compiled with Adam at `learning_rate` (a float or schedule)."""
    model.compile(keras.optimizers.Adam(learning_rate),
                  'sparse_categorical_crossentropy', metrics=['accuracy'])
    return model


def load_data(data_dir, train_examples=0):
    """`((x_train, y_train), (x_test, y_test))`, images scaled to [0, 1]."""
    (x_train, y_train), (x_test, y_test) = support.load_fashion_mnist(
        data_dir)
    if train_examples:
        x_train, y_train = x_train[:train_examples], y_train[:train_examples]
    return ((support.scale_images(x_train), y_train),
            (support.scale_images(x_test), y_test))


def steps_per_epoch(train, batch_size):
    return math.ceil(len(train[0]) / batch_size)


def pretrain(train, epochs, batch_size, seed, verbose=2, widths=WIDTHS,
             learning_rate=LEARNING_RATE):
    """`resnet(widths)` trained dense for `epochs` (0: just initialised),
    Adam at a constant `learning_rate`."""
    keras.utils.set_random_seed(seed)
    model = compiled(resnet(widths), learning_rate)
    if epochs:
        model.fit(*train, batch_size=batch_size, epochs=epochs,
                  verbose=verbose)
    return model


def decaying_rate(steps, learning_rate=LEARNING_RATE):
    """The second phase's learning rate: `learning_rate`, cosine to 0 over
    `steps`."""
    return keras.optimizers.schedules.CosineDecay(learning_rate, steps)


def fine_tune(model, train, epochs, batch_size, seed, callbacks=(),
              verbose=2, learning_rate=LEARNING_RATE):
    """Trains `model` (pruned or not) for the second phase: a fresh Adam
    with the decaying rate from `learning_rate`, and the batches of
    `seed`."""
    compiled(model, decaying_rate(
        epochs * steps_per_epoch(train, batch_size), learning_rate))
    keras.utils.set_random_seed(seed + 1)
    model.fit(*train, batch_size=batch_size, epochs=epochs, verbose=verbose,
              callbacks=list(callbacks))
    return model


def pruned_copy(dense, hparams):
    """A new model like `dense` holding its weights, pruned with
    `hparams`."""
    model = keras.models.clone_model(dense)
    model.set_weights(dense.get_weights())
    return tf_prune.prune(model, hparams)


def predict(model, images):
    return model.predict(images, batch_size=1000, verbose=0)


def accuracy(probabilities, labels):
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


@contextlib.contextmanager
def _quiet_stderr(quiet):
    """Sends file descriptor 2 to /dev/null: LiteRT's C++ announces its
    XNNPACK delegate there, and nothing in Python silences it."""
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def litert(path, threads=1, xnnpack=True, batch=1, quiet=True):
    """An allocated LiteRT interpreter of a TFLite file, for `batch` images."""
    resolver = (OpResolverType.AUTO if xnnpack else
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    with _quiet_stderr(quiet):
        interpreter = Interpreter(model_path=path, num_threads=threads,
                                  experimental_op_resolver_type=resolver)
        if batch != 1:
            interpreter.resize_tensor_input(
                interpreter.get_input_details()[0]['index'],
                (batch, 28, 28, 1))
        interpreter.allocate_tensors()
    return interpreter


def run_litert(interpreter, images):
    interpreter.set_tensor(interpreter.get_input_details()[0]['index'],
                           images)
    interpreter.invoke()
    return interpreter.get_tensor(
        interpreter.get_output_details()[0]['index'])


def _call_seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def litert_latency(paths, image, rounds, quiet=True):
    """Median LiteRT call time of each file (XNNPACK, 1 thread, batch 1),
    timed side by side; `paths` is `{name: path}`, the reference first.

    Returns:
      `({name: median ms}, {name: median of the per-round ratios to the
      reference})`.
    """
    calls = {}
    for name, path in paths.items():
        interpreter = litert(path, quiet=quiet)
        interpreter.set_tensor(interpreter.get_input_details()[0]['index'],
                               image)
        calls[name] = interpreter.invoke
    reference = next(iter(paths))
    warm = {name: [_call_seconds(call) for _ in range(20)]
            for name, call in calls.items()}
    per_turn = max(1, round(TURN_SECONDS / np.median(warm[reference])))
    every = {name: [] for name in calls}
    medians = {name: [] for name in calls}
    for index in range(rounds):
        order = list(calls) if index % 2 == 0 else list(calls)[::-1]
        for name in order:
            times = [_call_seconds(calls[name]) for _ in range(per_turn)]
            every[name] += times
            medians[name].append(np.median(times))
    milliseconds = {name: 1000 * float(np.median(t))
                    for name, t in every.items()}
    ratios = {name: float(np.median(np.divide(medians[name],
                                              medians[reference])))
              for name in calls}
    return milliseconds, ratios


def channel_table(dense, shrunk):
    """`(layer, dense channels, shrunk channels)` of each Conv and Dense
    layer, by name (shrink keeps the names)."""
    rows = []
    for layer in dense.layers:
        size = getattr(layer, 'filters', None) or getattr(layer, 'units', None)
        if size:
            other = shrunk.get_layer(layer.name)
            rows.append((layer.name, size,
                         getattr(other, 'filters', None)
                         or getattr(other, 'units')))
    return rows


def print_table(rows):
    """Left-aligned first column, right-aligned others."""
    rows = [tuple(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print('  '.join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))))


def _epochs(count):
    return f'{count} epoch' + ('' if count == 1 else 's')


def _fail(message):
    print(f'fashion_mnist_channels: {message}', file=sys.stderr)
    return 2


def widths_from_flags():
    """`--widths` as a tuple of ints; ValueError saying what is wrong."""
    try:
        widths = tuple(int(w) for w in FLAGS.widths)
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise ValueError(f'--widths must be one or more positive integers, '
                         f'got {",".join(FLAGS.widths)}')
    return widths


def _check_flags(hparams):
    """One line saying what is wrong with the flags, or None."""
    if hparams.structure != 'channel':
        return (f'--pruning_hparams must say structure=channel (this example '
                f'removes channels), got structure={hparams.structure}')
    if FLAGS.epochs < 1 or FLAGS.batch_size < 1:
        return '--epochs and --batch_size must be at least 1'
    if not FLAGS.learning_rate > 0:
        return f'--learning_rate must be above 0, got {FLAGS.learning_rate:g}'
    if not 1 <= FLAGS.prune_epochs <= FLAGS.epochs:
        return (f'--prune_epochs must be in [1, --epochs={FLAGS.epochs}], '
                f'got {FLAGS.prune_epochs}')
    if FLAGS.train_examples < 0:
        return '--train_examples must be 0 (all) or more'
    if FLAGS.latency_rounds < 1:
        return '--latency_rounds must be at least 1'
    return None


def _export(models, export_dir):
    """Writes `<name>.tflite` and `<name>.keras` of each model; returns
    {name: TFLite path}."""
    paths = {}
    for name, model in models.items():
        paths[name] = os.path.join(export_dir, f'{name}.tflite')
        tf_prune.export.tflite(model, paths[name], sparse=False)
        tf_prune.export.keras_file(model,
                                   os.path.join(export_dir, f'{name}.keras'))
    return paths


def main(argv):
    del argv
    quiet = not FLAGS.verbose
    if quiet:
        # Notes from TF's savers and converters; the user cannot act on them.
        logging.set_verbosity(logging.ERROR)
        warnings.simplefilter('ignore')
    try:
        hparams = tf_prune.flags.pruning_hparams_from_flags()
        problem = _check_flags(hparams)
        if problem:
            return _fail(problem)
        widths = widths_from_flags()
        # What the hparams cannot prune (a weight_sparsity_map giving one
        # channel group two targets, say) is refused before any training.
        tf_prune.prune(resnet(widths), hparams)
        keras.backend.clear_session()
        train, test = load_data(FLAGS.data_dir, FLAGS.train_examples)
    except (ValueError, support.DataError) as error:
        return _fail(error)
    dense_epochs = FLAGS.epochs - FLAGS.prune_epochs
    prune_steps = FLAGS.prune_epochs * steps_per_epoch(train,
                                                       FLAGS.batch_size)
    end_step = hparams.sparsity_function_end_step
    if prune_steps < end_step:
        print(f'Note: pruning ends at step {prune_steps}, before '
              f'sparsity_function_end_step={end_step}; the target sparsity '
              f'will not be reached.')
    os.makedirs(FLAGS.train_dir, exist_ok=True)

    started = time.perf_counter()
    if dense_epochs:
        print(f'Training dense, {_epochs(dense_epochs)}:')
    dense = pretrain(train, dense_epochs, FLAGS.batch_size, FLAGS.seed,
                     widths=widths, learning_rate=FLAGS.learning_rate)
    images, labels = test
    pretrained = accuracy(predict(dense, images), labels)
    pruned = pruned_copy(dense, hparams)
    callback = tf_prune.PruningCallback(hparams, log_dir=FLAGS.train_dir)
    print(f'Pruning channels and fine-tuning, {_epochs(FLAGS.prune_epochs)}:')
    fine_tune(pruned, train, FLAGS.prune_epochs, FLAGS.batch_size,
              FLAGS.seed, [callback], learning_rate=FLAGS.learning_rate)
    print(f'Training dense on, {_epochs(FLAGS.prune_epochs)}:')
    fine_tune(dense, train, FLAGS.prune_epochs, FLAGS.batch_size, FLAGS.seed,
              learning_rate=FLAGS.learning_rate)
    trained = time.perf_counter() - started

    shrunk = tf_prune.shrink(pruned)
    paths = _export({'dense': dense, 'shrunk': shrunk},
                    os.path.join(FLAGS.train_dir, 'export'))
    outputs = {'dense': predict(dense, images),
               'masked': predict(pruned, images),
               'shrunk': predict(shrunk, images)}
    tflite = run_litert(litert(paths['shrunk'], threads=os.cpu_count(),
                               xnnpack=False, batch=len(images),
                               quiet=quiet), images)
    milliseconds, ratios = litert_latency(paths, images[:1],
                                          FLAGS.latency_rounds, quiet)

    step = int(pruned.optimizer.iterations.numpy())
    print(f'\nTest accuracy ({len(labels):,} images) after '
          f'{_epochs(FLAGS.epochs)} each: {dense_epochs} dense, then '
          f'{FLAGS.prune_epochs} '
          f'({step} steps) pruning to channel sparsity '
          f'{hparams.target_sparsity:g} and fine-tuning, or dense:')
    results = {name: accuracy(probabilities, labels)
               for name, probabilities in outputs.items()}
    print_table([
        ('  dense when pruning began', f'{pretrained:.4f}'),
        ('  dense', f"{results['dense']:.4f}"),
        ('  masked', f"{results['masked']:.4f}"),
        ('  shrunk', f"{results['shrunk']:.4f}"),
        ('  shrunk, TFLite', f'{accuracy(tflite, labels):.4f}')])
    print(f"Shrunk against dense: "
          f"{100 * (results['shrunk'] - results['dense']):+.2f} points")
    difference = float(np.abs(outputs['shrunk'] - outputs['masked']).max())
    print(f'Shrunk against masked outputs: max difference {difference:.1e}')
    print(f'Removable channels masked: '
          f'{float(callback.pruning.model_sparsity.numpy()):.4f}')

    print(f'\nSize and LiteRT latency (XNNPACK, batch 1, 1 thread, '
          f'{FLAGS.latency_rounds} rounds):')
    figures = {name: (model.count_params(), cost.flops(model),
                      os.path.getsize(paths[name]), milliseconds[name])
               for name, model in (('dense', dense), ('shrunk', shrunk))}
    rows = [('model', 'parameters', 'FLOPs', 'TFLite bytes', 'latency ms')]
    for name, (params, flops, size, ms) in figures.items():
        rows.append((name, f'{params:,}', f'{flops:,}', f'{size:,}',
                     f'{ms:.4f}'))
    (dp, df, ds, _), (sp, sf, ss, _) = figures.values()
    rows.append(('shrunk/dense', f'{sp / dp:.3f}', f'{sf / df:.3f}',
                 f'{ss / ds:.3f}', f"{ratios['shrunk']:.3f}"))
    print_table(rows)
    print('(latency ratio: the median over the rounds of shrunk/dense in '
          'each round)')

    print('\nChannels per layer:')
    print_table([('layer', 'dense', 'shrunk')]
                + channel_table(dense, shrunk))
    print(f'\nTrained in {trained:.0f} s. Exports: '
          f'{os.path.join(FLAGS.train_dir, "export")}')
    print(f'TensorBoard logs: {FLAGS.train_dir}\n'
          f'  tensorboard --logdir {FLAGS.train_dir}'
          '   (the "Pruning" charts are under CUSTOM SCALARS)')
    return 0


if __name__ == '__main__':
    app.run(main)
