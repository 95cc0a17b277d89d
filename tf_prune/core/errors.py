"""The errors every layer of tf_prune raises, and their one-line form."""


class ModelFileError(ValueError):
    """A model file or directory that cannot be read, or is of no kind
    tf_prune reads. The message is one line naming the path."""


class StripError(ValueError):
    """A model that cannot be stripped or exported as asked (an output node
    it lacks, a format it cannot take). The message is one line naming the
    argument at fault."""


def one_line(error):
    """The first line of an error's message (TF's errors span many)."""
    message = getattr(error, 'message', None) or str(error)
    return message.strip().splitlines()[0] if message.strip() else repr(error)
