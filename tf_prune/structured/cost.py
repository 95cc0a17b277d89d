"""Parameters and multiply-accumulates of a model, and of what it keeps.

A model's cost is a sum over its weights: each weight counts its elements as
parameters, and the weights that multiply (the kernels of Conv1D/2D/3D,
Conv*Transpose, DepthwiseConv, SeparableConv and Dense) also count each
element once per position they are applied at, as multiply-accumulates
(MACs) per example: the output positions, or the input positions of a
transposed convolution (every input position meets the whole kernel).
Biases, BatchNormalization, activations, pooling and merges count as
parameters only. FLOPs are 2 x MACs.

Removing channels shrinks weight axes; `weight_costs` lists which, so the
same sum gives the cost of a shrunk model before it is built (`Pruning`'s
summaries compute it from the masks).
"""

import dataclasses
import math

import keras

from tf_prune.keras import _internals
from tf_prune.structured import groups as groups_lib

_L = keras.layers
_SEPARABLE = (_L.SeparableConv1D, _L.SeparableConv2D)
_TRANSPOSE = (_L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose)
_MULTIPLYING = (_L.Conv1D, _L.Conv2D, _L.Conv3D, _L.DepthwiseConv1D,
                _L.DepthwiseConv2D, _L.Dense, *_TRANSPOSE)

FLOPS_CONVENTION = (
    'FLOPs per example = 2 x multiply-accumulates of Conv1D/2D/3D, '
    'Conv*Transpose, DepthwiseConv, SeparableConv (depthwise + pointwise) and '
    'Dense layers; biases, BatchNormalization, activations, pooling and adds '
    'not counted')


@dataclasses.dataclass(frozen=True)
class WeightCost:
    """One weight's share of a model's cost.

    Attributes:
      path: the layer's path (as in `ChannelGroups.layers`).
      weight: the weight's attribute name, or its variable name for a weight
        no channel group reaches.
      shape: the weight's shape.
      positions: MACs per element per example (0 for a weight that does not
        multiply).
    """
    path: str
    weight: str
    shape: tuple
    positions: int

    def count(self, kept=None):
        """`(parameters, MACs)` with the axes `kept` gives shrunk.

        Args:
          kept: `{axis: kept size}` (numbers or tensors), or None for the
            whole weight.

        Returns:
          Two numbers, or tensors when `kept` holds tensors.
        """
        size = 1
        for axis, dim in enumerate(self.shape):
            size = size * (kept or {}).get(axis, dim)
        return size, size * self.positions


def _positions(layer, shapes, weight):
    """MACs per element of `layer`'s `weight` (an attribute name)."""
    if shapes is None or not isinstance(layer, (*_MULTIPLYING, *_SEPARABLE)):
        return 0
    input_shape, output_shape = shapes
    if isinstance(layer, _SEPARABLE):
        multiplies = weight in ('depthwise_kernel', 'pointwise_kernel')
    else:
        multiplies = weight == 'kernel'
    if not multiplies:
        return 0
    spatial = input_shape if isinstance(layer, _TRANSPOSE) else output_shape
    return math.prod(int(d) for d in spatial[1:-1])


def _attribute_names(layer):
    """`{id(variable): attribute name}` for `layer`'s named weights."""
    names = {}
    for name in ('kernel', 'bias', 'depthwise_kernel', 'pointwise_kernel',
                 'gamma', 'beta', 'moving_mean', 'moving_variance', 'alpha',
                 'embeddings', 'recurrent_kernel'):
        variable = getattr(layer, name, None)
        if isinstance(variable, keras.Variable):
            names.setdefault(id(variable), name)
    return names


def weight_costs(found):
    """The `WeightCost` of every weight of every layer a graph calls.

    Args:
      found: the model's `ChannelGroups`.

    Returns:
      A tuple of `WeightCost`s, layer by layer in `found.layers` order.
    """
    costs = []
    for path, layer in found.layers.items():
        if _internals.is_graph_model(layer):
            continue  # its layers are listed themselves
        names = _attribute_names(layer)
        shapes = found.shapes.get(path)
        for variable in layer.weights:
            name = names.get(id(variable), variable.name)
            costs.append(WeightCost(path, name, tuple(variable.shape),
                                    _positions(layer, shapes, name)))
    return tuple(costs)


def positions_by_variable(found):
    """`{id(variable): MACs per element}` of the weights that multiply."""
    positions = {}
    for path, layer in found.layers.items():
        if _internals.is_graph_model(layer):
            continue
        names = _attribute_names(layer)
        for variable in layer.weights:
            count = _positions(layer, found.shapes.get(path),
                               names.get(id(variable), variable.name))
            if count:
                positions[id(variable)] = count
    return positions


def macs(model):
    """Multiply-accumulates per example of a Sequential or Functional model
    (see the module docstring)."""
    costs = weight_costs(groups_lib.find_channel_groups(model))
    return sum(cost.count()[1] for cost in costs)


def flops(model):
    """2 x `macs(model)`: see FLOPS_CONVENTION."""
    return 2 * macs(model)
