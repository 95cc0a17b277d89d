"""TF 1.15's `tf.contrib.model_pruning` on TF 2's graph mode.

Changing the import is the whole migration:

    from tf_prune.compat.v1 import pruning     # ...contrib.model_pruning.python
    from tf_prune.compat.v1 import layers      # ...python.layers
    from tf_prune.compat import v1 as model_pruning

The submodules are contrib's: `pruning`, `pruning_utils`, `layers` (with
`layers.core_layers`, `layers.layers`, `layers.rnn_cells`; the package
exports `layers.layers`' functions too), `learning` and
`strip_pruning_vars_lib`; `core_layers` and `rnn_cells` are also attributes
here. With Keras 3, TF hides `tf.compat.v1.nn.rnn_cell`; `rnn_cells` holds
TF's own `MultiRNNCell` and `LSTMStateTuple` for stacking masked cells. The package exports what contrib's `__init__` did. It works with eager
execution disabled (`tf.compat.v1.disable_eager_execution()`, or
`tf.compat.v1.disable_v2_behavior()`), or in a `tf.Graph().as_default()`
block; importing it changes no global setting.
"""

from tf_prune.compat.v1 import learning
from tf_prune.compat.v1 import pruning
from tf_prune.compat.v1 import pruning_utils
from tf_prune.compat.v1 import strip_pruning_vars_lib
from tf_prune.compat.v1 import layers
from tf_prune.compat.v1.layers import core_layers
from tf_prune.compat.v1.layers import rnn_cells
from tf_prune.compat.v1.layers.layers import masked_conv2d
from tf_prune.compat.v1.layers.layers import masked_convolution
from tf_prune.compat.v1.layers.layers import masked_fully_connected
from tf_prune.compat.v1.layers.rnn_cells import MaskedBasicLSTMCell
from tf_prune.compat.v1.layers.rnn_cells import MaskedLSTMCell
from tf_prune.compat.v1.learning import train
from tf_prune.compat.v1.pruning import Pruning
from tf_prune.compat.v1.pruning import apply_mask
from tf_prune.compat.v1.pruning import get_masked_weights
from tf_prune.compat.v1.pruning import get_masks
from tf_prune.compat.v1.pruning import get_pruning_hparams
from tf_prune.compat.v1.pruning import get_thresholds
from tf_prune.compat.v1.pruning import get_weight_sparsity
from tf_prune.compat.v1.pruning import get_weights
from tf_prune.compat.v1.strip_pruning_vars_lib import graph_def_from_checkpoint
from tf_prune.compat.v1.strip_pruning_vars_lib import strip_pruning_vars_fn

__all__ = [
    'MaskedBasicLSTMCell',
    'MaskedLSTMCell',
    'Pruning',
    'apply_mask',
    'get_masked_weights',
    'get_masks',
    'get_pruning_hparams',
    'get_thresholds',
    'get_weight_sparsity',
    'get_weights',
    'graph_def_from_checkpoint',
    'masked_conv2d',
    'masked_convolution',
    'masked_fully_connected',
    'strip_pruning_vars_fn',
    'train',
]
