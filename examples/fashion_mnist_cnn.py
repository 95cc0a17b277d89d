r"""Prunes a CNN on Fashion-MNIST with contrib's --pruning_hparams, then strips it.

    python examples/fashion_mnist_cnn.py --train_dir=/tmp/fashion_mnist \
        --pruning_hparams=name=fashion_mnist_pruning,target_sparsity=0.9,pruning_frequency=100,sparsity_function_end_step=1900 \
        --epochs=6

1. Trains a dense copy of the CNN (same seed, epochs and batch size) as the
   baseline, kept in `<train_dir>/dense.keras`.
2. Trains the pruned CNN with `fit` and `tf_prune.PruningCallback`:
   TensorBoard logs (contrib's tags and the "Pruning" custom-scalars
   dashboard) and checkpoints go to `--train_dir`; a second run with the same
   `--train_dir` continues from the last completed epoch.
3. Strips the pruning variables and writes `<train_dir>/export/`: frozen
   GraphDefs and TFLite files (the pruned one sparse-encoded) of both models.
4. Prints dense and pruned test accuracy (the pruned TFLite file's too, run
   by LiteRT), the sparsity of each pruned weight, and the file sizes, raw
   and gzipped.

Fashion-MNIST is read from Debian's `dataset-fashion-mnist` package
(`--data_dir` to read it elsewhere). Bad input prints one line and exits 2.
TensorFlow's own logs and warnings show with `--verbose`.
"""

import math
import os
import sys
import warnings

# TensorFlow reads its C++ log level when it is imported, before absl parses
# the flags: so a plain --verbose is looked for in sys.argv.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0' if '--verbose' in sys.argv else '2'

from absl import app, flags, logging  # noqa: E402
from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import tf_prune  # noqa: E402
from tf_prune import checkpoints  # noqa: E402

import support  # noqa: E402

tf_prune.flags.DEFINE_pruning_hparams(
    default='name=fashion_mnist_pruning,target_sparsity=0.9,'
            'pruning_frequency=100,sparsity_function_end_step=1900')
flags.DEFINE_string('train_dir', '/tmp/fashion_mnist_pruning',
                    'Where TensorBoard logs, checkpoints and exports go')
flags.DEFINE_integer('epochs', 6, 'Training epochs, for each model')
flags.DEFINE_integer('batch_size', 128, 'Training batch size')
flags.DEFINE_string('data_dir', support.DEFAULT_DATA_DIR,
                    'Directory of the Fashion-MNIST idx files')
flags.DEFINE_integer('train_examples', 0,
                     'Train on the first N training images (0: all 60,000)')
flags.DEFINE_integer('seed', 0, 'Seed of the weights and the shuffling')
flags.DEFINE_bool('verbose', False, "Also print TensorFlow's logs and warnings")
FLAGS = flags.FLAGS

OUTPUT_NODE = 'probabilities'


def cnn():
    """Conv 32@3x3, pool, Conv 64@3x3, pool, Dense 128, Dense 10 (softmax)."""
    return keras.Sequential([
        keras.Input((28, 28, 1), name='images'),
        keras.layers.Conv2D(32, 3, activation='relu', name='conv1'),
        keras.layers.MaxPooling2D(name='pool1'),
        keras.layers.Conv2D(64, 3, activation='relu', name='conv2'),
        keras.layers.MaxPooling2D(name='pool2'),
        keras.layers.Flatten(name='flatten'),
        keras.layers.Dense(128, activation='relu', name='fc1'),
        keras.layers.Dense(10, activation='softmax', name=OUTPUT_NODE),
    ], name='fashion_mnist_cnn')


def _compiled(model):
    model.compile(keras.optimizers.Adam(1e-3),
                  'sparse_categorical_crossentropy', metrics=['accuracy'])
    return model


def _data():
    (x_train, y_train), (x_test, y_test) = support.load_fashion_mnist(
        FLAGS.data_dir)
    if FLAGS.train_examples:
        x_train = x_train[:FLAGS.train_examples]
        y_train = y_train[:FLAGS.train_examples]
    return ((support.scale_images(x_train), y_train),
            (support.scale_images(x_test), y_test))


def _dense_baseline(path, train):
    """The dense CNN trained as the pruned one is, cached in `path`."""
    if os.path.exists(path):
        return keras.models.load_model(path)
    keras.utils.set_random_seed(FLAGS.seed)
    model = _compiled(cnn())
    model.fit(*train, batch_size=FLAGS.batch_size, epochs=FLAGS.epochs,
              verbose=2)
    tf_prune.export.keras_file(model, path)
    return model


def _train_pruned(hparams, train, test):
    keras.utils.set_random_seed(FLAGS.seed)
    model = _compiled(tf_prune.prune(cnn(), hparams))
    callback = tf_prune.PruningCallback(
        hparams, log_dir=FLAGS.train_dir, checkpoint_dir=FLAGS.train_dir)
    steps_per_epoch = math.ceil(len(train[0]) / FLAGS.batch_size)
    completed = checkpoints.latest_step(FLAGS.train_dir) // steps_per_epoch
    if completed >= FLAGS.epochs:
        print(f'{FLAGS.train_dir} holds {completed} trained epochs, '
              f'--epochs={FLAGS.epochs}: nothing left to train.')
    elif completed:
        print(f'{FLAGS.train_dir} holds {completed} trained epochs; '
              f'training continues from there.')
    model.fit(*train, batch_size=FLAGS.batch_size, epochs=FLAGS.epochs,
              initial_epoch=completed,
              validation_data=test, verbose=2, callbacks=[
                  callback,
                  keras.callbacks.TensorBoard(FLAGS.train_dir,
                                              write_graph=False)])
    return model, callback.pruning


def _tflite_accuracy(path, test):
    """Test accuracy of a TFLite file, run by LiteRT's interpreter."""
    images, labels = test
    # TFLite's builtin kernels, on every core: LiteRT's default XNNPACK
    # delegate computes the same but announces itself on stderr, and nothing
    # in Python silences it.
    interpreter = Interpreter(
        model_path=path, num_threads=os.cpu_count(),
        experimental_op_resolver_type=(
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    index = interpreter.get_input_details()[0]['index']
    interpreter.resize_tensor_input(index, images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    output = interpreter.get_tensor(
        interpreter.get_output_details()[0]['index'])
    return float(np.mean(np.argmax(output, axis=1) == labels))


def _export(dense, pruned, export_dir):
    """Writes both models as GraphDef and TFLite; returns {file: path}."""
    paths = {name: os.path.join(export_dir, name) for name in (
        'dense.pb', 'pruned.pb', 'dense.tflite', 'pruned_sparse.tflite')}
    stripped = tf_prune.strip_pruning(pruned)
    tf_prune.export.frozen_graph(dense, paths['dense.pb'])
    tf_prune.export.frozen_graph(stripped, paths['pruned.pb'])
    tf_prune.export.tflite(dense, paths['dense.tflite'], sparse=False)
    tf_prune.export.tflite(stripped, paths['pruned_sparse.tflite'],
                           sparse=True)
    return paths


def _weight_table(pruning, step):
    rows = [('weight', 'shape', 'target', 'sparsity', 'threshold')]
    for name, mask, target, sparsity, threshold in zip(
            pruning.get_weight_names(), pruning.get_masks(),
            pruning.get_target_sparsities(step),
            pruning.get_weight_sparsity(), pruning.get_thresholds()):
        rows.append((name, 'x'.join(map(str, mask.shape)),
                     f'{float(target):.4f}', f'{float(sparsity):.4f}',
                     f'{float(threshold.numpy()):.5f}'))
    return rows


def _size_table(paths):
    rows = [('file', 'bytes', 'gzipped', 'bytes vs dense', 'gzipped vs dense')]
    sizes = {name: support.file_sizes(path)
             for name, path in paths.items()}
    for name, (raw, packed) in sizes.items():
        dense_raw, dense_packed = sizes[
            'dense.pb' if name.endswith('.pb') else 'dense.tflite']
        rows.append((os.path.relpath(paths[name], FLAGS.train_dir),
                     f'{raw:,}', f'{packed:,}', f'{raw / dense_raw:.2f}x',
                     f'{packed / dense_packed:.2f}x'))
    return rows


def _print_table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print('  '.join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))))


def _fail(message):
    print(f'fashion_mnist_cnn: {message}', file=sys.stderr)
    return 2


def main(argv):
    del argv
    if not FLAGS.verbose:
        # Notes from TF's savers and converters; the user cannot act on them.
        logging.set_verbosity(logging.ERROR)
        warnings.simplefilter('ignore')
    try:
        hparams = tf_prune.flags.pruning_hparams_from_flags()
        checkpoints.check_hparams(FLAGS.train_dir, hparams)
        # A damaged newest checkpoint is passed over, or stops the run here.
        _, resume_note = checkpoints.resume_from(FLAGS.train_dir)
        train, test = _data()
    except (ValueError, support.DataError) as error:  # ModelFileError too
        return _fail(error)
    if resume_note:
        print(f'Note: {resume_note}.')
    if FLAGS.epochs < 1 or FLAGS.batch_size < 1:
        return _fail('--epochs and --batch_size must be at least 1')
    os.makedirs(FLAGS.train_dir, exist_ok=True)
    steps = FLAGS.epochs * math.ceil(len(train[0]) / FLAGS.batch_size)
    if steps < hparams.sparsity_function_end_step:
        print(f'Note: training ends at step {steps}, before '
              f'sparsity_function_end_step={hparams.sparsity_function_end_step}'
              f'; the target sparsity will not be reached.')

    dense = _dense_baseline(os.path.join(FLAGS.train_dir, 'dense.keras'),
                            train)
    try:
        pruned, pruning = _train_pruned(hparams, train, test)
    except tf_prune.DirectoryInUseError as error:
        return _fail(error)
    paths = _export(dense, pruned, os.path.join(FLAGS.train_dir, 'export'))

    accuracy = {
        'dense': dense.evaluate(*test, verbose=0)[1],
        'pruned': pruned.evaluate(*test, verbose=0)[1],
        'pruned, sparse TFLite': _tflite_accuracy(
            paths['pruned_sparse.tflite'], test)}
    step = int(pruned.optimizer.iterations.numpy())
    print(f'\nTest accuracy after {FLAGS.epochs} epochs ({step} steps):')
    for name, value in accuracy.items():
        print(f'  {name:<22s} {100 * value:.2f}%')
    print(f'\nPruned weights at step {step} (model sparsity '
          f'{float(pruning.model_sparsity.numpy()):.4f}):')
    _print_table(_weight_table(pruning, step))
    print(f'\nFiles in {FLAGS.train_dir}:')
    _print_table(_size_table(paths))
    print(f'\nTensorBoard logs: {FLAGS.train_dir}\n'
          f'  tensorboard --logdir {FLAGS.train_dir}'
          '   (the "Pruning" charts are under CUSTOM SCALARS)')
    return 0


if __name__ == '__main__':
    app.run(main)
