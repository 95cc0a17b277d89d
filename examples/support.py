"""What the examples and benchmarks share: Fashion-MNIST (the library's
reader, `tf_prune.sensitivity.data`), and file sizes raw and gzipped.

Scripts in `examples/` import it as a sibling module; benchmarks and tests
put `examples/` on `sys.path` first.
"""

import gzip

from tf_prune.sensitivity.data import CLASS_NAMES  # noqa: F401
from tf_prune.sensitivity.data import DEFAULT_DATA_DIR  # noqa: F401
from tf_prune.sensitivity.data import INSTALL_HINT  # noqa: F401
from tf_prune.sensitivity.data import DataError  # noqa: F401
from tf_prune.sensitivity.data import load_fashion_mnist  # noqa: F401
from tf_prune.sensitivity.data import read_idx  # noqa: F401
from tf_prune.sensitivity.data import scale_images  # noqa: F401


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
