"""contrib's strip_pruning_vars_lib: freeze a TF1 checkpoint, fold its masks.

The work is `tf_prune.export.tf1_graph`'s, shared with
`tools/strip_pruning_vars.py`; this module keeps contrib's names, the two
private helpers contrib's tests call included.
"""

from tf_prune.export.tf1_graph import graph_def_from_checkpoint
from tf_prune.export.tf1_graph import strip_pruning_vars_fn

__all__ = ['graph_def_from_checkpoint', 'strip_pruning_vars_fn']


def _node_name(tensor_name):
    """The node of a tensor name: `a/b:0` -> `a/b`."""
    return tensor_name.split(':')[0]


def _tensor_name(node_name):
    """The first output of a node: `a/b` -> `a/b:0` (tensor names unchanged)."""
    return node_name if ':' in node_name else node_name + ':0'
