"""tf_prune: TensorFlow 1.15's `tf.contrib.model_pruning` for TF 2 and Keras 3.

The public API is `__all__`. The package is laid out along the data path:
`core` (hparams, schedule, mask engine; TensorFlow only), `keras` (the
wrapper, `prune`, the controller, callbacks, summaries, stripping),
`export` (model files out and in, TF1 graph surgery, sparsity reports),
and the capabilities above them: `structured` (channel pruning and
`shrink`), `sensitivity` (per-layer scans and a suggested spec),
`compat.v1` (contrib's TF1 graph API), `tfmot` (tfmot 0.8.1's pruning
API on Keras 3).
"""

from tf_prune import export
from tf_prune import sensitivity
from tf_prune import structured
from tf_prune import tfmot
from tf_prune.core import flags
from tf_prune.core.errors import DirectoryInUseError
from tf_prune.core.errors import ModelFileError
from tf_prune.core.errors import StripError
from tf_prune.core.hparams import PruningHParams
from tf_prune.core.hparams import get_pruning_hparams
from tf_prune.core.masking import update_mask
from tf_prune.core.schedule import block_dims
from tf_prune.core.schedule import compute_sparsity
from tf_prune.core.schedule import mask_update_due
from tf_prune.core.schedule import weight_sparsity
from tf_prune.export import sparsity_report
from tf_prune.export.tf1_graph import graph_def_from_checkpoint
from tf_prune.export.tf1_graph import strip_pruning_vars_fn
from tf_prune.keras import training_dir as checkpoints
from tf_prune.keras.callbacks import PruningCallback
from tf_prune.keras.callbacks import TrainingDirectory
from tf_prune.keras.controller import Pruning
from tf_prune.keras.prune import prune
from tf_prune.keras.strip import strip_pruning
from tf_prune.keras.wrapper import PruneWrapper
from tf_prune.structured.shrink import shrink

__all__ = [
    'DirectoryInUseError',
    'ModelFileError',
    'PruneWrapper',
    'Pruning',
    'PruningCallback',
    'PruningHParams',
    'StripError',
    'TrainingDirectory',
    'block_dims',
    'checkpoints',
    'compute_sparsity',
    'export',
    'flags',
    'get_pruning_hparams',
    'graph_def_from_checkpoint',
    'mask_update_due',
    'prune',
    'sensitivity',
    'shrink',
    'sparsity_report',
    'strip_pruning',
    'strip_pruning_vars_fn',
    'structured',
    'tfmot',
    'update_mask',
    'weight_sparsity',
]
