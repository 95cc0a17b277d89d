"""Outputs that appear whole or not at all, and locks that keep writers apart.

A temporary is named after its target and the process writing it
(`.<stem>.tmp-<pid>-<random><extension>`), so a process killed midway leaves
a temporary that the next write of the same target recognises as stale (its
process is gone) and removes, while a concurrent writer's stays. The locks
are `flock`s, which the kernel releases when their process ends, killed or
not.
"""

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import threading

from tf_prune.core.errors import DirectoryInUseError

# The lock file of a `DirectoryLock`, inside its directory.
LOCK_NAME = '.tf_prune.lock'


@contextlib.contextmanager
def atomic_output(path):
    """Yields a temporary path beside `path`, renamed to `path` on success.

    Whatever is written there (a file or a directory) replaces `path` only
    once the block has finished; an error or a crash inside the block leaves
    `path` as it was. A crash leaves the temporary behind: the next
    `atomic_output` of the same `path` removes it, and any other its killed
    writers left. Concurrent writers of one `path` all succeed, the last to
    finish wins. The temporary name keeps `path`'s extension, for writers
    that check it. Missing parent directories are created.

    Args:
      path: the output file or directory.

    Yields:
      The temporary path to write.

    Raises:
      OSError: the temporary cannot be made; the error names `path`.
    """
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    try:
        os.makedirs(directory, exist_ok=True)
        with _locked(_lock_path(path)):
            _remove_stale(directory, name)
        handle, temporary = tempfile.mkstemp(
            prefix=f'.{stem}.tmp-{os.getpid()}-', suffix=extension,
            dir=directory)
    except OSError as error:
        # mkstemp names its random temporary; the user asked for `path`.
        raise type(error)(error.errno, error.strerror, path) from None
    os.close(handle)
    os.remove(temporary)  # the writer creates it, as a file or a directory
    try:
        yield temporary
        _move_into_place(temporary, path)
    finally:
        _remove(temporary)


def check_creatable(directory, what):
    """Raises unless `directory` exists or could be made; makes nothing.

    A tool checks its output directory this way before it works, and makes
    it only when it writes: bad input found later leaves no empty directory
    behind.

    Args:
      directory: the directory.
      what: how the user gave it, for the message (`--output_dir=out`).

    Raises:
      ValueError: its nearest existing ancestor is not a writable
        directory.
    """
    existing = os.path.abspath(directory)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f'cannot create {what}: {existing} is not a '
                         f'directory')
    if not os.access(existing, os.W_OK):
        raise ValueError(f'{what} is not writable')


def write_bytes(path, data):
    """Writes `data` to `path` atomically (see `atomic_output`)."""
    with atomic_output(path) as temporary:
        with open(temporary, 'wb') as file:
            file.write(data)


def _move_into_place(temporary, path):
    """Renames `temporary` to `path`, over the file or directory there."""
    if not os.path.isdir(temporary):
        os.replace(temporary, path)  # atomic, concurrent writers or not
        return
    directory, name = os.path.split(path)
    # A directory cannot be renamed over another: the old one is moved aside
    # first, so `path` is never half old, half new. The lock keeps
    # concurrent writers from moving each other's directory.
    with _locked(_lock_path(path)):
        if os.path.isdir(path):
            old = tempfile.mkdtemp(prefix=f'.{name}.old-{os.getpid()}-',
                                   dir=directory)
            os.replace(path, os.path.join(old, name))
            os.replace(temporary, path)
            shutil.rmtree(old)
        else:
            os.replace(temporary, path)


def _lock_path(path):
    """The lock of the changes to `path` and its leftovers."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f'.{name}.lock')


def _remove_stale(directory, name):
    """Removes what killed writers of `directory/name` left beside it.

    Their temporaries, and the old directories of interrupted swaps; a
    temporary of a live process (a concurrent writer) stays. Run under the
    lock of `_lock_path`, so no swap is under way.
    """
    stem, extension = os.path.splitext(name)
    # mkstemp and mkdtemp draw their random part from [a-z0-9_].
    leftover = re.compile(
        rf'\.{re.escape(stem)}\.tmp-(\d+)-[a-z0-9_]+{re.escape(extension)}'
        rf'|\.{re.escape(name)}\.(old)-(\d+)-[a-z0-9_]+')
    path = os.path.join(directory, name)
    for entry in os.listdir(directory):
        match = leftover.fullmatch(entry)
        if not match or _running(int(match.group(1) or match.group(3))):
            continue
        stale = os.path.join(directory, entry)
        if match.group(2) and not os.path.exists(path):
            # Killed between moving the old output aside and moving the new
            # one in: the old one is the output; put it back.
            with contextlib.suppress(OSError):
                os.replace(os.path.join(stale, name), path)
        _remove(stale)


def _running(pid):
    """Whether process `pid` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove(path):
    """Removes a file or directory tree if it exists."""
    # Errors are ignored: a concurrent writer may be removing the same
    # leftover, and one that stays is removed by a later write.
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _lock(lock_path, blocking):
    """Takes the exclusive flock of `lock_path`, creating the file.

    Args:
      lock_path: the lock file.
      blocking: wait for another holder to release it.

    Returns:
      The open descriptor holding the lock, or None when another holds it
      and `blocking` is false.
    """
    operation = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
    while True:
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, operation)
        except BlockingIOError:
            os.close(descriptor)
            return None
        except OSError:
            os.close(descriptor)
            raise
        if _is_at(descriptor, lock_path):
            return descriptor
        # The holder we waited for removed the file as it released it;
        # the lock is now that of the file at `lock_path`.
        os.close(descriptor)


def _is_at(descriptor, path):
    """Whether the open `descriptor` is the file now at `path`."""
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)


def _unlock(lock_path, descriptor):
    # Removed while still held, so no lock file outlives its use, and a
    # waiter that then gets the removed file's lock sees it and retries.
    # (Gone already when its directory was removed meanwhile.)
    with contextlib.suppress(FileNotFoundError):
        os.remove(lock_path)
    os.close(descriptor)


@contextlib.contextmanager
def _locked(lock_path):
    descriptor = _lock(lock_path, blocking=True)
    try:
        yield
    finally:
        _unlock(lock_path, descriptor)


class DirectoryLock:
    """An exclusive lock on a directory, for one process at a time.

    An flock on `<directory>/.tf_prune.lock`, which holds the holder's pid
    for the message of the process refused. The kernel releases it when the
    process ends, killed or not; a clean release removes the file. Holders
    in one process share the lock (a process does not lock itself out, say
    when a notebook fits again after an interrupted fit).

    Args:
      directory: the directory to lock (created if missing).
      user: what uses the directory, for the message: 'training' gives
        "training directory <directory> is in use by another training (pid
        123); wait for it to end, or use another directory".
    """

    _held = {}  # lock path: [descriptor, number of holders in this process]
    _guard = threading.Lock()

    def __init__(self, directory, user):
        self._directory = directory
        self._user = user
        self._path = os.path.join(os.path.realpath(directory), LOCK_NAME)
        self._holding = False

    def acquire(self):
        """Takes the lock, unless this holder has it already.

        Raises:
          DirectoryInUseError: another process holds it.
          OSError: the directory or its lock file cannot be made.
        """
        with self._guard:
            if self._holding:
                return
            held = self._held.get(self._path)
            if held is None:
                held = self._held[self._path] = [self._take(), 0]
            held[1] += 1
            self._holding = True

    def release(self):
        """Gives the lock up; the last holder of the process removes it."""
        with self._guard:
            if not self._holding:
                return
            self._holding = False
            held = self._held[self._path]
            held[1] -= 1
            if not held[1]:
                del self._held[self._path]
                _unlock(self._path, held[0])

    def _take(self):
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        descriptor = _lock(self._path, blocking=False)
        if descriptor is None:
            pid = self._holder()
            holder = f' (pid {pid})' if pid else ''
            raise DirectoryInUseError(
                f'{self._user} directory {self._directory} is in use by '
                f'another {self._user}{holder}; wait for it to end, or use '
                f'another directory', self._directory, pid)
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f'{os.getpid()}\n'.encode())
        return descriptor

    def _holder(self):
        """The pid the holder wrote, or None (not written yet, or gone)."""
        try:
            with open(self._path) as file:
                return int(file.read().strip())
        except (OSError, ValueError):
            return None
