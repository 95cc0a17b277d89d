"""Evaluation data for scans: Fashion-MNIST's test split, or an `.npz`.

Fashion-MNIST is read from local idx files (nothing is downloaded): Debian's
`dataset-fashion-mnist` package installs the four files (gzipped) in
`/usr/share/datasets/fashion-mnist`; uncompressed copies (`...-ubyte`
without `.gz`) are read too. The examples read their training data here
as well.
"""

import gzip
import os
import zipfile

import numpy as np

DEFAULT_DATA_DIR = '/usr/share/datasets/fashion-mnist'
INSTALL_HINT = ('install it with `apt-get install dataset-fashion-mnist` '
                '(Debian) or pass --data_dir=<directory with the idx files>')
CLASS_NAMES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
               'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
# idx magic numbers: two zero bytes, the element type (0x08: uint8), then the
# number of dimensions.
_UINT8 = 0x08


class DataError(OSError):
    """Fashion-MNIST is missing or unreadable; the message says what to do."""


def read_idx(path):
    """Reads one idx file of unsigned bytes (gzipped when it ends in `.gz`).

    Args:
      path: the file.

    Returns:
      A uint8 array of the shape the file declares.

    Raises:
      DataError: the file is not an idx file of uint8 or is truncated.
    """
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as file:
            data = file.read()
    except (OSError, EOFError) as error:
        raise DataError(f'{path} is unreadable: {error}') from error
    if len(data) < 4 or data[:2] != b'\0\0' or data[2] != _UINT8:
        raise DataError(f'{path} is not an idx file of unsigned bytes')
    rank = data[3]
    header = 4 + 4 * rank
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
                  for i in range(rank))
    size = int(np.prod(shape))
    if len(data) != header + size:
        raise DataError(f'{path} holds {len(data) - header} bytes of data, '
                        f'its header declares {size} (shape {shape})')
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def scale_images(images, channel_axis=True):
    """uint8 images as the models take them: float32 in [0, 1].

    Args:
      images: uint8 array `(n, 28, 28)`.
      channel_axis: add a trailing axis of size 1, for convolutions.

    Returns:
      A float32 array, `(n, 28, 28, 1)` or `(n, 28, 28)`.
    """
    scaled = images.astype(np.float32) / 255.0
    return scaled[..., np.newaxis] if channel_axis else scaled


def _find(data_dir, name):
    for candidate in (name + '.gz', name):
        path = os.path.join(data_dir, candidate)
        if os.path.isfile(path):
            return path
    raise DataError(f'Fashion-MNIST not found: {data_dir} has no {name}.gz; '
                    f'{INSTALL_HINT}')


def load_fashion_mnist(data_dir=None):
    """Fashion-MNIST, as `keras.datasets.fashion_mnist.load_data()` gives it.

    Args:
      data_dir: the directory of the four idx files; default
        `/usr/share/datasets/fashion-mnist`.

    Returns:
      `((x_train, y_train), (x_test, y_test))`: uint8 images of shape
      `(n, 28, 28)` and uint8 labels 0 to 9 (`CLASS_NAMES`); 60,000 training
      and 10,000 test examples.

    Raises:
      DataError: a file is missing or unreadable, or images and labels
        disagree in number; one line naming the file and the fix.
    """
    data_dir = data_dir or DEFAULT_DATA_DIR
    splits = []
    for split in ('train', 'test'):
        images_name, labels_name = _FILES[split]
        images = read_idx(_find(data_dir, images_name))
        labels = read_idx(_find(data_dir, labels_name))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f'{data_dir}: {split} images of shape '
                            f'{images.shape} do not go with labels of shape '
                            f'{labels.shape}')
        splits.append((images, labels))
    return tuple(splits)


def _read_npz(path):
    """The arrays `x_test` and `y_test` of an `.npz` file.

    Args:
      path: the file.

    Returns:
      `(x_test, y_test)`.

    Raises:
      DataError: the file is unreadable, is not an `.npz` archive (`np.load`
        reads a single `.npy` array too, whatever the file's name), or lacks
        an array.
    """
    try:
        arrays = np.load(path)
        if not isinstance(arrays, np.lib.npyio.NpzFile):
            raise DataError(f'{path} holds a single array, not an .npz '
                            f'archive; save x_test and y_test in it with '
                            f'numpy.savez')
        with arrays:
            missing = sorted({'x_test', 'y_test'} - set(arrays.files))
            if missing:
                raise DataError(f'{path} has no {", ".join(missing)}; save '
                                f'the arrays x_test and y_test in it')
            return arrays['x_test'], arrays['y_test']
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(f'{path} is not a readable .npz file: '
                        f'{error}') from None


def load_evaluation_data(source, data_dir=None):
    """Test images and labels to score a model on.

    Args:
      source: 'fashion_mnist' (its 10,000 test images, float32 in [0, 1],
        shape `(n, 28, 28, 1)`), or the path of an `.npz` file with arrays
        `x_test` and `y_test`.
      data_dir: Fashion-MNIST's directory (default
        `/usr/share/datasets/fashion-mnist`).

    Returns:
      `(x, y)` numpy arrays.

    Raises:
      DataError: the data is missing or unreadable; one line saying what to
        do.
    """
    if source == 'fashion_mnist':
        _, (images, labels) = load_fashion_mnist(data_dir)
        return scale_images(images), labels
    if not source.endswith('.npz'):
        raise DataError(f'--data={source}: give fashion_mnist or an .npz file '
                        f'with x_test and y_test')
    x, y = _read_npz(source)
    if len(x) != len(y) or not len(x):
        raise DataError(f'{source}: x_test ({len(x)}) and y_test ({len(y)}) '
                        f'must hold the same number of examples, at least one')
    return x, y


def accuracy(x, y, batch_size=256):
    """An `evaluate` function: the classification accuracy on `(x, y)`.

    Args:
      x: the inputs.
      y: integer labels, or one-hot rows.
      batch_size: the batch size of `predict`.

    Returns:
      A function from a Keras model (compiled or not) to its accuracy, the
      fraction of examples whose largest output is the label.
    """
    labels = np.asarray(y)
    if labels.ndim > 1:
        labels = labels.argmax(-1)

    def evaluate(model):
        outputs = model.predict(x, batch_size=batch_size, verbose=0)
        return float(np.mean(np.asarray(outputs).argmax(-1) == labels))

    return evaluate
