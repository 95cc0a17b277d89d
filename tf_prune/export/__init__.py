"""Stripped models as files, model files read back, and their sparsity.

`tf_prune.export.frozen_graph`, `tflite`, `saved_model` and `keras_file`
write a model (pruned or not) stripped of its pruning state; `freeze`,
`freeze_saved_model` and `freeze_checkpoint` give the `FrozenGraph` they
write from.
"""

from tf_prune.export.frozen import FrozenGraph
from tf_prune.export.frozen import freeze
from tf_prune.export.frozen import freeze_checkpoint
from tf_prune.export.frozen import freeze_saved_model
from tf_prune.export.writers import QUANTIZE_MODES
from tf_prune.export.writers import frozen_graph
from tf_prune.export.writers import keras_file
from tf_prune.export.writers import saved_model
from tf_prune.export.writers import tflite

__all__ = ['FrozenGraph', 'QUANTIZE_MODES', 'freeze', 'freeze_checkpoint',
           'freeze_saved_model', 'frozen_graph', 'keras_file', 'saved_model',
           'tflite']
