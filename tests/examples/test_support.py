"""The examples' support module: the Fashion-MNIST loader (Debian's files,
and the errors for absent or bad ones), and file sizes."""

import gzip
import shutil

import numpy as np
import pytest

import support
from tests.helpers.fashion_mnist import write_idx


def _small_dataset(directory, compress=True):
    rng = np.random.default_rng(0)
    arrays = {}
    suffix = '.gz' if compress else ''
    for split, n in (('train', 12), ('t10k', 5)):
        images = rng.integers(0, 256, (n, 28, 28))
        labels = rng.integers(0, 10, n)
        write_idx(directory / f'{split}-images-idx3-ubyte{suffix}', images,
                   compress)
        write_idx(directory / f'{split}-labels-idx1-ubyte{suffix}', labels,
                   compress)
        arrays[split] = (images, labels)
    return arrays


def test_debians_package_loads_with_its_known_shape_and_balance():
    (x_train, y_train), (x_test, y_test) = support.load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    # Fashion-MNIST is balanced: 6,000 and 1,000 of each of the 10 classes.
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert len(support.CLASS_NAMES) == 10
    # The first training label of Fashion-MNIST is an ankle boot.
    assert support.CLASS_NAMES[y_train[0]] == 'Ankle boot'


@pytest.mark.parametrize('compress', [True, False])
def test_reads_gzipped_and_plain_idx_files(tmp_path, compress):
    written = _small_dataset(tmp_path, compress)
    (x_train, y_train), (x_test, y_test) = support.load_fashion_mnist(
        str(tmp_path))
    np.testing.assert_array_equal(x_train, written['train'][0])
    np.testing.assert_array_equal(y_train, written['train'][1])
    np.testing.assert_array_equal(x_test, written['t10k'][0])
    np.testing.assert_array_equal(y_test, written['t10k'][1])


def test_absent_data_says_how_to_install_it(tmp_path):
    with pytest.raises(support.DataError) as error:
        support.load_fashion_mnist(str(tmp_path / 'nowhere'))
    message = str(error.value)
    assert '\n' not in message
    assert 'train-images-idx3-ubyte.gz' in message
    assert 'apt-get install dataset-fashion-mnist' in message
    assert '--data_dir' in message


def test_truncated_file_is_named(tmp_path):
    _small_dataset(tmp_path)
    path = tmp_path / 't10k-images-idx3-ubyte.gz'
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-10]))
    with pytest.raises(support.DataError,
                       match=r't10k-images-idx3-ubyte.gz holds 3910 bytes'):
        support.load_fashion_mnist(str(tmp_path))


def test_a_file_that_is_not_idx_is_named(tmp_path):
    _small_dataset(tmp_path)
    shutil.copy(__file__, tmp_path / 'train-labels-idx1-ubyte.gz')
    with pytest.raises(support.DataError, match='train-labels-idx1-ubyte.gz'):
        support.load_fashion_mnist(str(tmp_path))


def test_images_and_labels_must_agree(tmp_path):
    _small_dataset(tmp_path)
    write_idx(tmp_path / 'train-labels-idx1-ubyte.gz', np.zeros(11),
              compress=True)
    with pytest.raises(support.DataError, match='do not go with labels'):
        support.load_fashion_mnist(str(tmp_path))


def test_scale_images_gives_float32_in_unit_range():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    scaled = support.scale_images(images)
    assert scaled.dtype == np.float32 and scaled.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(scaled[0, :, :, 0],
                                  np.float32([[0, 1], [0.2, 0.4]]))
    assert support.scale_images(images, channel_axis=False).shape == (1, 2, 2)


def test_sizes_are_raw_and_gzipped(tmp_path):
    zeros = bytes(10000)
    raw, packed = support.sizes(zeros)
    assert raw == 10000 and packed < 100
    noise = np.random.default_rng(0).bytes(10000)
    (tmp_path / 'noise').write_bytes(noise)
    raw, packed = support.file_sizes(str(tmp_path / 'noise'))
    assert raw == 10000 and packed > 9000
