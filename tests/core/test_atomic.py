"""Atomic outputs: whole or absent, and errors that name the target."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tf_prune.core import atomic
from tf_prune.core import errors


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


# Leftovers of killed writers, and concurrent writers.

HELPER = pathlib.Path(__file__).parents[1] / 'helpers' / 'atomic_process.py'


def _dead_pid():
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, '-c', ''])
    child.wait()
    return child.pid


def test_a_write_removes_what_killed_writers_of_its_target_left(tmp_path):
    dead = _dead_pid()
    killed = [f'.model.tmp-{dead}-k1ll3d_0.pb', f'.model.tmp-{dead}-abc.pb']
    for name in killed:
        (tmp_path / name).write_bytes(b'')
    (tmp_path / f'.saved.tmp-{dead}-abc').mkdir()
    (tmp_path / f'.saved.tmp-{dead}-abc' / 'saved_model.pb').write_bytes(b'x')
    (tmp_path / '.saved.lock').write_bytes(b'')  # a killed swap's lock
    live = [f'.model.tmp-{os.getpid()}-live.pb',  # a concurrent writer's
            f'.model.tmp-{dead}-other.keras',      # another target's
            f'.other.tmp-{dead}-abc.pb']
    for name in live:
        (tmp_path / name).write_bytes(b'')
    atomic.write_bytes(tmp_path / 'model.pb', b'new')
    with atomic.atomic_output(tmp_path / 'saved') as temporary:
        os.makedirs(temporary)
    assert sorted(os.listdir(tmp_path)) == sorted(live + ['model.pb', 'saved'])


def test_an_output_moved_aside_by_a_killed_swap_is_put_back(tmp_path):
    aside = tmp_path / f'.saved.old-{_dead_pid()}-abc' / 'saved'
    aside.mkdir(parents=True)
    (aside / 'f').write_bytes(b'old')
    with pytest.raises(RuntimeError):
        with atomic.atomic_output(tmp_path / 'saved'):
            raise RuntimeError('the writer failed')
    assert (tmp_path / 'saved' / 'f').read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['saved']


@pytest.mark.parametrize('kind', ['directory', 'file'])
def test_concurrent_writers_of_one_target_all_succeed(tmp_path, kind):
    name = 'out_dir' if kind == 'directory' else 'out.pb'
    target = tmp_path / 'out' / name
    go = tmp_path / 'go'
    # 2 x 200 writes: before the swap was locked, 5 to 10% of them failed.
    writers = [subprocess.Popen(
        [sys.executable, str(HELPER), 'write', str(target), kind, '200',
         str(go)], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    assert [writer.stdout.readline() for writer in writers] == ['ready\n'] * 2
    go.touch()
    failures = [json.loads(writer.communicate(timeout=60)[0])['failures']
                for writer in writers]
    assert failures == [[], []]
    assert os.listdir(target.parent) == [target.name]
    if kind == 'directory':
        # Whole: both files of one write.
        assert (target / 'a').read_text() == (target / 'b').read_text()


def test_a_directory_lock_refuses_another_process_until_it_ends(tmp_path):
    holder = subprocess.Popen([sys.executable, str(HELPER), 'hold',
                               str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline() == 'held\n'
    lock = atomic.DirectoryLock(str(tmp_path), 'training')
    with pytest.raises(errors.DirectoryInUseError) as error:
        lock.acquire()
    assert str(error.value) == (
        f'training directory {tmp_path} is in use by another training '
        f'(pid {holder.pid}); '
        f'wait for it to end, or use another directory')
    assert error.value.pid == holder.pid
    # Killed, the holder's lock goes with it.
    holder.kill()
    holder.wait()
    lock.acquire()
    assert (tmp_path / atomic.LOCK_NAME).read_text() == f'{os.getpid()}\n'
    lock.release()
    assert os.listdir(tmp_path) == []


def test_holders_in_one_process_share_the_lock(tmp_path):
    first = atomic.DirectoryLock(str(tmp_path), 'training')
    second = atomic.DirectoryLock(str(tmp_path / '.'), 'training')
    first.acquire()
    first.acquire()
    second.acquire()
    first.release()
    assert (tmp_path / atomic.LOCK_NAME).exists()
    # Not released twice by a second release() of one holder.
    first.release()
    assert (tmp_path / atomic.LOCK_NAME).exists()
    second.release()
    assert os.listdir(tmp_path) == []


def test_check_creatable_refuses_a_file_in_the_way_and_makes_nothing(tmp_path):
    atomic.check_creatable(str(tmp_path / 'a' / 'b'), '--output_dir=a/b')
    assert not (tmp_path / 'a').exists()
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ValueError, match=(
            rf'^cannot create --output_dir=out: {tmp_path}/file is not a '
            rf'directory$')):
        atomic.check_creatable(str(tmp_path / 'file' / 'out'), '--output_dir=out')
