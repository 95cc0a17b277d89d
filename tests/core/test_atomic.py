"""Atomic outputs: whole or absent, and errors that name the target."""

import os

import pytest

from tf_prune.core import atomic


def test_a_file_appears_whole_and_replaces_the_old_one(tmp_path):
    path = tmp_path / 'sub' / 'model.pb'
    atomic.write_bytes(path, b'old')
    atomic.write_bytes(path, b'new')
    assert path.read_bytes() == b'new'
    assert os.listdir(tmp_path / 'sub') == ['model.pb']


def test_an_error_inside_leaves_the_old_output_and_no_temporary(tmp_path):
    path = tmp_path / 'model.pb'
    path.write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with atomic.atomic_output(path) as temporary:
            with open(temporary, 'wb') as file:
                file.write(b'half')
            raise RuntimeError('the writer failed')
    assert path.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['model.pb']


def test_a_directory_output_replaces_the_old_directory(tmp_path):
    path = tmp_path / 'saved'
    for content in (b'1', b'2'):
        with atomic.atomic_output(path) as temporary:
            os.makedirs(temporary)
            with open(os.path.join(temporary, 'f'), 'wb') as file:
                file.write(content)
    assert (path / 'f').read_bytes() == b'2'
    assert os.listdir(tmp_path) == ['saved']


@pytest.mark.parametrize('path', ['/sys/tf_prune_model.pb',
                                  '/dev/null/model.pb'])
def test_an_unwritable_destination_is_named_not_a_temporary(path):
    with pytest.raises(OSError) as error:
        atomic.write_bytes(path, b'x')
    assert error.value.filename == path
    assert '.tmp-' not in str(error.value)
