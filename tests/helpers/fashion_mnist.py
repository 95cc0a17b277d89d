"""Fashion-MNIST data directories for the examples' tests: idx files as
Debian's dataset-fashion-mnist holds them, made from arrays."""

import gzip
import os

import numpy as np

from tf_prune.sensitivity.data import load_fashion_mnist


def write_idx(path, array, compress=False):
    """Writes `array` as an idx file of unsigned bytes (gzipped when
    `compress`), as `support.read_idx` reads them."""
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b''.join(
        int(size).to_bytes(4, 'big') for size in array.shape)
    opener = gzip.open if compress else open
    with opener(path, 'wb') as file:
        file.write(header + array.tobytes())


def fashion_mnist_slice(directory, train_examples, test_examples):
    """Writes a --data_dir holding the first `train_examples` training and
    `test_examples` test images (and labels) of the real Fashion-MNIST, as
    uncompressed idx files.

    The examples read their whole training split before --train_examples
    cuts it (some scale it all), and score every test image they find.

    Returns:
      `directory`.
    """
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    os.makedirs(directory, exist_ok=True)
    for name, array in (
            ('train-images-idx3-ubyte', x_train[:train_examples]),
            ('train-labels-idx1-ubyte', y_train[:train_examples]),
            ('t10k-images-idx3-ubyte', x_test[:test_examples]),
            ('t10k-labels-idx1-ubyte', y_test[:test_examples])):
        write_idx(directory / name, array)
    return directory
