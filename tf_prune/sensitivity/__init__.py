"""Sensitivity analysis: how much each weight or channel group can lose.

`scan(model, evaluate)` prunes each unit alone at each sparsity and records
the metric; `suggest(result, max_drop, model, evaluate)` turns the table
into a `weight_sparsity_map` spec that keeps the whole model's one-shot drop
within a budget. `accuracy(x, y)` makes an `evaluate` for classifiers, and
`load_evaluation_data` reads Fashion-MNIST's test split or an `.npz`.
`uniform_like(model, parameters)` finds the uniform pruning of the same
size, to compare a suggestion with (`parameters_after` counts).
"""

from tf_prune.sensitivity.data import accuracy
from tf_prune.sensitivity.data import load_evaluation_data
from tf_prune.sensitivity.scan import DEFAULT_SPARSITIES
from tf_prune.sensitivity.scan import Row
from tf_prune.sensitivity.scan import ScanResult
from tf_prune.sensitivity.scan import Unit
from tf_prune.sensitivity.scan import scan
from tf_prune.sensitivity.suggest import Suggestion
from tf_prune.sensitivity.suggest import Try
from tf_prune.sensitivity.suggest import suggest
from tf_prune.sensitivity.uniform import Uniform
from tf_prune.sensitivity.uniform import UniformPruning
from tf_prune.sensitivity.uniform import parameters_after
from tf_prune.sensitivity.uniform import uniform_like
from tf_prune.sensitivity.uniform import uniform_spec

__all__ = [
    'DEFAULT_SPARSITIES', 'Row', 'ScanResult', 'Suggestion', 'Try',
    'Uniform', 'UniformPruning', 'Unit', 'accuracy', 'load_evaluation_data',
    'parameters_after', 'scan', 'suggest', 'uniform_like', 'uniform_spec',
]
