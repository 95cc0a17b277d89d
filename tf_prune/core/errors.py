"""The errors every layer of tf_prune raises, and their one-line form."""


class ModelFileError(ValueError):
    """A model file or directory that cannot be read, or is of no kind
    tf_prune reads. The message is one line naming the path."""


class StripError(ValueError):
    """A model that cannot be stripped or exported as asked (an output node
    it lacks, a format it cannot take). The message is one line naming the
    argument at fault."""


class DirectoryInUseError(RuntimeError):
    """A directory another process holds the `DirectoryLock` of.

    The message is one line naming the directory, what holds it and the way
    out. `directory` and `pid` (None when unknown) say the same.
    """

    def __init__(self, message, directory, pid):
        super().__init__(message)
        self.directory = directory
        self.pid = pid


def one_line(error):
    """The first line of an error's message (TF's errors span many)."""
    message = getattr(error, 'message', None) or str(error)
    return message.strip().splitlines()[0] if message.strip() else repr(error)
