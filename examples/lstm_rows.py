r"""An LSTM reads Fashion-MNIST images row by row; its kernels are pruned in 1x4 blocks.

    python examples/lstm_rows.py --train_dir=/tmp/lstm_rows \
        --pruning_hparams=name=lstm_pruning,target_sparsity=0.75,block_height=1,block_width=4,pruning_frequency=50,sparsity_function_end_step=1200

Each image is 28 time steps of 28 pixels. The LSTM's `kernel` and
`recurrent_kernel` are pruned with contrib's block sparsity: the weight's
`|w|` is pooled (`block_pooling_function`, AVG by default) over
`block_height x block_width` blocks, whole blocks are kept or zeroed, and the
mask is expanded back, so the zeros come in runs a sparse kernel can skip.
At the end the example checks that every block is all zeros or all kept,
and writes the stripped model as a sparse TFLite file (batch size 1, as
TFLite converts an LSTM). TensorFlow's own logs and warnings show with
`--verbose`.
"""

import math
import os
import sys
import warnings

# TensorFlow reads its C++ log level when it is imported, before absl parses
# the flags: so a plain --verbose is looked for in sys.argv.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0' if '--verbose' in sys.argv else '2'

from absl import app, flags, logging  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import tf_prune  # noqa: E402
from tf_prune import checkpoints  # noqa: E402

import support  # noqa: E402

tf_prune.flags.DEFINE_pruning_hparams(
    default='name=lstm_pruning,target_sparsity=0.75,block_height=1,'
            'block_width=4,pruning_frequency=50,sparsity_function_end_step=1200')
flags.DEFINE_string('train_dir', '/tmp/lstm_rows',
                    'Where TensorBoard logs, checkpoints and the export go')
flags.DEFINE_integer('epochs', 4, 'Training epochs')
flags.DEFINE_integer('batch_size', 128, 'Training batch size')
flags.DEFINE_integer('units', 64, 'LSTM units')
flags.DEFINE_string('data_dir', support.DEFAULT_DATA_DIR,
                    'Directory of the Fashion-MNIST idx files')
flags.DEFINE_integer('train_examples', 0,
                     'Train on the first N training images (0: all 60,000)')
flags.DEFINE_bool('verbose', False, "Also print TensorFlow's logs and warnings")
FLAGS = flags.FLAGS


def row_lstm(units):
    """LSTM over the 28 rows of an image, then a softmax over 10 classes."""
    return keras.Sequential([
        keras.Input((28, 28), name='rows'),
        keras.layers.LSTM(units, name='lstm'),
        keras.layers.Dense(10, activation='softmax', name='probabilities'),
    ], name='row_lstm')


def block_purity(mask, block):
    """The fraction of `block`-shaped tiles of a 2-D mask that are uniform."""
    height, width = block
    rows, cols = mask.shape
    tiles = mask[:rows - rows % height, :cols - cols % width].reshape(
        rows // height, height, cols // width, width)
    low, high = tiles.min(axis=(1, 3)), tiles.max(axis=(1, 3))
    return float(np.mean(low == high))


def main(argv):
    del argv
    if not FLAGS.verbose:
        # Notes from TF's savers and converter; the user cannot act on them.
        logging.set_verbosity(logging.ERROR)
        warnings.simplefilter('ignore')
    try:
        hparams = tf_prune.flags.pruning_hparams_from_flags()
        (x_train, y_train), (x_test, y_test) = support.load_fashion_mnist(
            FLAGS.data_dir)
        checkpoints.check_hparams(FLAGS.train_dir, hparams)
        # A damaged newest checkpoint is passed over, or stops the run here.
        _, resume_note = checkpoints.resume_from(FLAGS.train_dir)
    except (ValueError, support.DataError) as error:  # ModelFileError too
        print(f'lstm_rows: {error}', file=sys.stderr)
        return 2
    if resume_note:
        print(f'Note: {resume_note}.')
    if FLAGS.train_examples:
        x_train = x_train[:FLAGS.train_examples]
        y_train = y_train[:FLAGS.train_examples]
    x_train = support.scale_images(x_train, channel_axis=False)
    x_test = support.scale_images(x_test, channel_axis=False)

    keras.utils.set_random_seed(0)
    model = tf_prune.prune(row_lstm(FLAGS.units), hparams)
    model.compile(keras.optimizers.Adam(2e-3),
                  'sparse_categorical_crossentropy', metrics=['accuracy'])
    callback = tf_prune.PruningCallback(hparams, log_dir=FLAGS.train_dir,
                                        checkpoint_dir=FLAGS.train_dir)
    steps_per_epoch = math.ceil(len(x_train) / FLAGS.batch_size)
    completed = checkpoints.latest_step(FLAGS.train_dir) // steps_per_epoch
    try:
        model.fit(x_train, y_train, batch_size=FLAGS.batch_size,
                  epochs=FLAGS.epochs, initial_epoch=completed, verbose=2,
                  callbacks=[callback])
    except tf_prune.DirectoryInUseError as error:
        print(f'lstm_rows: {error}', file=sys.stderr)
        return 2
    pruning = callback.pruning

    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    print(f'\nTest accuracy: {100 * accuracy:.2f}%')
    print(f'{"weight":<22s} {"shape":>8s} {"sparsity":>9s} '
          f'{"uniform blocks":>15s}')
    for name, mask, sparsity in zip(pruning.get_weight_names(),
                                    pruning.get_masks(),
                                    pruning.get_weight_sparsity()):
        mask = mask.numpy()
        block = tf_prune.block_dims(hparams, name)
        print(f'{name:<22s} {"x".join(map(str, mask.shape)):>8s} '
              f'{float(sparsity):9.4f} {block_purity(mask, block):15.4f}')

    path = os.path.join(FLAGS.train_dir, 'export', 'lstm_rows_sparse.tflite')
    tf_prune.export.tflite(tf_prune.strip_pruning(model), path, sparse=True)
    size, gzipped = support.file_sizes(path)
    print(f'\nWrote {path}: {size:,} bytes, {gzipped:,} gzipped')
    print(f'TensorBoard logs: {FLAGS.train_dir}\n'
          f'  tensorboard --logdir {FLAGS.train_dir}')
    return 0


if __name__ == '__main__':
    app.run(main)
