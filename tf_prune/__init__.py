"""tf_prune: TensorFlow 1.15's `tf.contrib.model_pruning` for TF 2 and Keras 3."""

from tf_prune import checkpoints
from tf_prune import datasets
from tf_prune import export
from tf_prune import flags
from tf_prune import sparsity_report
from tf_prune.callbacks import PruningCallback
from tf_prune.hparams import PruningHParams
from tf_prune.hparams import get_pruning_hparams
from tf_prune.masking import update_mask
from tf_prune.pruning import Pruning
from tf_prune.schedule import block_dims
from tf_prune.schedule import compute_sparsity
from tf_prune.schedule import mask_update_due
from tf_prune.schedule import weight_sparsity
from tf_prune.strip import StripError
from tf_prune.strip import graph_def_from_checkpoint
from tf_prune.strip import strip_pruning
from tf_prune.strip import strip_pruning_vars_fn
from tf_prune.transform import prune
from tf_prune.wrapper import PruneWrapper

__all__ = [
    'PruneWrapper',
    'Pruning',
    'PruningCallback',
    'PruningHParams',
    'StripError',
    'block_dims',
    'checkpoints',
    'compute_sparsity',
    'datasets',
    'export',
    'flags',
    'get_pruning_hparams',
    'graph_def_from_checkpoint',
    'mask_update_due',
    'prune',
    'sparsity_report',
    'strip_pruning',
    'strip_pruning_vars_fn',
    'update_mask',
    'weight_sparsity',
]
