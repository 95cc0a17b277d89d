"""`tfmot.sparsity.keras`, tfmot 0.8.1's pruning API, on Keras 3.

`from tf_prune import tfmot` in place of
`import tensorflow_model_optimization as tfmot` is the whole migration:
the names, arguments, defaults, masks and summaries are tfmot's. See
docs/tfmot.md for what differs.
"""

from tf_prune.tfmot.callbacks import PruningSummaries
from tf_prune.tfmot.callbacks import UpdatePruningStep
from tf_prune.tfmot.policy import PruneForLatencyOnXNNPack
from tf_prune.tfmot.policy import PruningPolicy
from tf_prune.tfmot.prunable_layer import PrunableLayer
from tf_prune.tfmot.prune import prune_low_magnitude
from tf_prune.tfmot.prune import prune_scope
from tf_prune.tfmot.prune import strip_pruning
from tf_prune.tfmot.schedule import ConstantSparsity
from tf_prune.tfmot.schedule import PolynomialDecay
from tf_prune.tfmot.schedule import PruningSchedule

__all__ = [
    'ConstantSparsity',
    'PolynomialDecay',
    'PrunableLayer',
    'PruneForLatencyOnXNNPack',
    'PruningPolicy',
    'PruningSchedule',
    'PruningSummaries',
    'UpdatePruningStep',
    'prune_low_magnitude',
    'prune_scope',
    'strip_pruning',
]
