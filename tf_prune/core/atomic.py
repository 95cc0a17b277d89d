"""Outputs that appear whole or not at all."""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_output(path):
    """Yields a temporary path beside `path`, renamed to `path` on success.

    Whatever is written there (a file or a directory) replaces `path` only
    once the block has finished; an error or a crash inside the block leaves
    `path` as it was (a crash may leave the `.tmp-` sibling behind). The
    temporary name keeps `path`'s extension, for writers that check it.
    Missing parent directories are created.

    Args:
      path: the output file or directory.

    Yields:
      The temporary path to write.
    """
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=f'.{stem}.tmp-', suffix=extension, dir=directory)
    except OSError as error:
        # mkstemp names its random temporary; the user asked for `path`.
        raise type(error)(error.errno, error.strerror, path) from None
    os.close(handle)
    os.remove(temporary)  # the writer creates it, as a file or a directory
    try:
        yield temporary
        if os.path.isdir(temporary) and os.path.isdir(path):
            # A directory cannot be renamed over another: move the old one
            # aside first, so `path` is never half old, half new.
            old = tempfile.mkdtemp(prefix=f'.{stem}.old-', dir=directory)
            os.replace(path, os.path.join(old, name))
            os.replace(temporary, path)
            shutil.rmtree(old)
        else:
            os.replace(temporary, path)
    finally:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary)
        elif os.path.exists(temporary):
            os.remove(temporary)


def write_bytes(path, data):
    """Writes `data` to `path` atomically."""
    with atomic_output(path) as temporary:
        with open(temporary, 'wb') as file:
            file.write(data)
