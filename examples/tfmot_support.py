"""What tfmot's MNIST pruning examples take from tfmot's internals, for their
ports `tfmot_mnist_cnn.py`, `tfmot_mnist_e2e.py` and
`tfmot_mnist_e2e_sparsity2x4.py` (tfmot 0.8.1,
tensorflow_model_optimization/python/examples/sparsity/keras/mnist/).

tfmot's examples import these from modules outside tfmot's public API, which
`tf_prune.tfmot` does not provide; the ports import this module under the
original's names (`import tfmot_support as keras_test_utils`):

- `get_preprocessed_mnist_data` and `eval_mnist_tflite`, from tfmot's
  python/core/keras/test_utils.py: the same preprocessing and the same
  image-by-image evaluation, on Fashion-MNIST read from Debian's
  `dataset-fashion-mnist` files instead of MNIST downloaded by
  `keras.datasets.mnist.load_data()`, and run by LiteRT's interpreter
  (`ai_edge_litert`) instead of `tf.lite.Interpreter`, which TF 2.21
  deprecates in its favour, with TFLite's builtin kernels (see
  `eval_mnist_tflite`);
- `load_data`: what `keras.datasets.mnist.load_data()` returns, for
  mnist_cnn.py, which calls it itself;
- `is_pruned_m_by_n`, from tfmot's python/core/sparsity/keras/pruning_utils.py:
  whether a weight holds at most n - m non-zeros in every n consecutive
  values of its input-channel axis.

It also defines the flags that shorten the examples' runs: `--data_dir`,
`--train_examples` and `--test_examples` (0, the default, keeps the whole
split, as the originals do).
"""

from absl import flags
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.interpreter import OpResolverType
import keras
import numpy as np
import tensorflow as tf

import support

flags.DEFINE_string('data_dir', support.DEFAULT_DATA_DIR,
                    'Directory of the Fashion-MNIST idx files')
flags.DEFINE_integer('train_examples', 0,
                     'Train on the first N training images (0: all 60,000)')
flags.DEFINE_integer('test_examples', 0,
                     'Test on the first N test images (0: all 10,000)')
FLAGS = flags.FLAGS


def load_data():
    """Fashion-MNIST as `keras.datasets.mnist.load_data()` gives MNIST:
    `((x_train, y_train), (x_test, y_test))`, uint8 images `(n, 28, 28)`
    and uint8 labels, cut to `--train_examples` and `--test_examples`."""
    (x_train, y_train), (x_test, y_test) = support.load_fashion_mnist(
        FLAGS.data_dir)
    train = slice(FLAGS.train_examples or None)
    test = slice(FLAGS.test_examples or None)
    return (x_train[train], y_train[train]), (x_test[test], y_test[test])


def get_preprocessed_mnist_data(img_rows=28,
                                img_cols=28,
                                num_classes=10,
                                is_quantized_model=False):
    """Get data for mnist training and evaluation."""
    (x_train, y_train), (x_test, y_test) = load_data()

    if keras.backend.image_data_format() == 'channels_first':
        x_train = x_train.reshape(x_train.shape[0], 1, img_rows, img_cols)
        x_test = x_test.reshape(x_test.shape[0], 1, img_rows, img_cols)
        input_shape = (1, img_rows, img_cols)
    else:
        x_train = x_train.reshape(x_train.shape[0], img_rows, img_cols, 1)
        x_test = x_test.reshape(x_test.shape[0], img_rows, img_cols, 1)
        input_shape = (img_rows, img_cols, 1)

    if not is_quantized_model:
        x_train = x_train.astype('float32')
        x_test = x_test.astype('float32')
        x_train /= 255
        x_test /= 255

    # convert class vectors to binary class matrices
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)

    return (x_train, y_train), (x_test, y_test), input_shape


def eval_mnist_tflite(model_path=None, model_content=None, is_quantized=False):
    """Evaluate mnist in TFLite for accuracy."""
    # TFLite's builtin kernels: LiteRT's default XNNPACK delegate (which
    # tf.lite.Interpreter applies too) computes wrong outputs for the
    # sparse, dynamic-range int8 file of mnist_e2e.py (1x16 blocks).
    interpreter = Interpreter(
        model_path=model_path, model_content=model_content,
        experimental_op_resolver_type=(
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]['index']
    output_index = interpreter.get_output_details()[0]['index']

    _, test_data, _ = get_preprocessed_mnist_data(
        is_quantized_model=is_quantized)
    x_test, y_test = test_data

    total_seen = 0
    num_correct = 0

    for img, label in zip(x_test, y_test):
        inp = img.reshape((1, 28, 28, 1))
        total_seen += 1
        interpreter.set_tensor(input_index, inp)
        interpreter.invoke()
        predictions = interpreter.get_tensor(output_index)
        if np.argmax(predictions) == np.argmax(label):
            num_correct += 1

        if total_seen % 1000 == 0:
            print('Accuracy after %i images: %f' %
                  (total_seen, float(num_correct) / float(total_seen)))

    return float(num_correct) / float(total_seen)


def weights_rearrange(weights):
    """A rank-2 or rank-4 weight as rows of its input-channel axis: Dense
    `[C_IN, C_OUT]` as `[C_OUT, C_IN]`, Conv2D `[H, W, C_IN, C_OUT]` as
    `[C_OUT * H * W, C_IN]` (the layout TFLite stores them in)."""
    if weights.shape.rank == 2:
        prepared_weights = tf.transpose(weights)
    elif weights.shape.rank == 4:
        perm_weights = tf.transpose(weights, perm=[3, 0, 1, 2])
        prepared_weights = tf.reshape(
            perm_weights, [tf.reduce_prod(perm_weights.shape[:-1]), -1])
    else:
        raise ValueError(
            f'weight tensor with shape: {weights.shape} is not supported.')

    return prepared_weights


def is_pruned_m_by_n(weights, m_by_n=(2, 4), last_channel='C_OUT'):
    """Check m by n sparsity pattern on Weight Tensor.

    Args:
      weights: A tensor of layer weights.
      m_by_n: a tuple of 2 integers (m, n), indicates m zeros in every n
        consecutive values, m must be smaller than n. Default to (2, 4).
      last_channel: A string, 'C_OUT'(default) and 'C_IN' are supported.
        Last channel of weights tensor.
          Conv2D weights in TF: [H, W, C_IN, C_OUT], TFLite: [C_OUT, H, W,
          C_IN]
          DENSE weights in TF: [C_IN, C_OUT], TFLite: [C_OUT, C_IN]

    Returns:
      A boolean value: True if weights are pruned with sparsity m_by_n
        on the last channel.

    Raises:
      ValueError:
        if unsupported last_channel.
        if m is larger than n.
    """
    weights = tf.convert_to_tensor(weights)
    num_zeros, num_elem = m_by_n
    if num_zeros > num_elem:
        raise ValueError(f"number of zeros can't be more than number "
                         f"elements. received: {num_zeros} zeros in "
                         f"{num_elem} elements.")
    num_non_zeros = num_elem - num_zeros

    if last_channel.endswith('C_IN'):
        prepared_weights = tf.reshape(
            weights, [tf.reduce_prod(weights.shape[:-1]), -1])
    elif last_channel.endswith('C_OUT'):
        prepared_weights = weights_rearrange(weights)
    else:
        raise ValueError('last_channel must be `C_IN` or `C_OUT`')

    prepared_weights_np = prepared_weights.numpy()
    for row in range(0, prepared_weights_np.shape[0]):
        for col in range(0, prepared_weights_np.shape[1], num_elem):
            if (np.count_nonzero(prepared_weights_np[row, col:col + num_elem])
                    > num_non_zeros):
                return False
    return True
