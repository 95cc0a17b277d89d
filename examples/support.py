"""What the examples and benchmarks share, and the library does not offer.

Fashion-MNIST read from local idx files (nothing is downloaded), and file
sizes raw and gzipped. Scripts in `examples/` import it as a sibling
module; benchmarks and tests put `examples/` on `sys.path` first.

Debian's `dataset-fashion-mnist` package installs the four idx files
(gzipped) in `/usr/share/datasets/fashion-mnist`, the examples' and
benchmarks' default. Uncompressed copies (`...-ubyte` without `.gz`) are
read too.
"""

import gzip
import os

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
    """Fashion-MNIST, as `keras.support.fashion_mnist.load_data()` gives it.

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


def sizes(content):
    """`(bytes, gzipped bytes)` of a model's bytes, gzip at its level 9.

    Zeros stored densely shrink under gzip, zeros left out (TFLite's sparse
    format) do not need to; the pair shows which a file does.
    """
    return len(content), len(gzip.compress(content))


def file_sizes(path):
    """`sizes` of a file's content."""
    with open(path, 'rb') as file:
        return sizes(file.read())
