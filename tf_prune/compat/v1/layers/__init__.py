"""contrib's `model_pruning.python.layers`: masked TF1 layers and LSTM cells.

The modules are contrib's: `core_layers` (the layer classes and the
collection names), `layers` (`masked_conv2d`, `masked_fully_connected`) and
`rnn_cells` (`MaskedBasicLSTMCell`, `MaskedLSTMCell`). The package also
exports `layers`' functions, so `from tf_prune.compat.v1 import layers`
stands for contrib's `from ...python.layers import layers`.
"""

from tf_prune.compat.v1.layers import core_layers
from tf_prune.compat.v1.layers import layers
from tf_prune.compat.v1.layers import rnn_cells
from tf_prune.compat.v1.layers.layers import masked_conv2d
from tf_prune.compat.v1.layers.layers import masked_convolution
from tf_prune.compat.v1.layers.layers import masked_fully_connected

__all__ = ['core_layers', 'layers', 'masked_conv2d', 'masked_convolution',
           'masked_fully_connected', 'rnn_cells']
