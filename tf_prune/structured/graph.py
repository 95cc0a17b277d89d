"""How channels flow through the calls of a Keras graph.

`trace(model)` walks the calls of a Sequential or Functional model in running
order, into nested models, and follows every channel. Each position along the
last (channel) axis of a tensor holds an *element*, a number:

- a producer (Conv1D/2D/3D, Conv*Transpose, Dense, SeparableConv's pointwise
  half) makes new elements for its output channels, once per layer, so a layer
  called twice makes the same channels;
- a layer that keeps channels apart (BatchNormalization, activations,
  Dropout, pooling, padding, cropping, upsampling, DepthwiseConv) passes its
  input's elements on (DepthwiseConv repeats each `depth_multiplier` times);
- Concatenate on the channel axis concatenates its inputs' elements; Flatten
  and a Reshape whose last axis is a multiple of its input's repeat them in
  the flattened order (position `p` holds input channel `p % C`);
- Add, Subtract, Average, Maximum, Minimum and Multiply join the elements they
  combine position by position (union-find): joined elements are removed
  together;
- anything else is not followed: it *fixes* the elements it reads and makes
  new fixed ones, as do the model's inputs and outputs.

A `PruneWrapper` is followed as the layer it wraps (which has its name).

Every weight axis (and config size) whose positions are channels is recorded
as an `Axis` holding the elements of its positions; a layer called twice
joins the elements of both calls, since it has one weight.

Along the way each tensor position also carries a *blame*: -1 if the position
is exactly 0 once the members of its element's set are zeroed (see
`groups.py` for the rule), or the index of the reason why it is not. A layer
that mixes channels (Conv, Dense, SeparableConv) fixes the elements it reads
at blamed positions, since removing its input slice would change its output.
"""

import dataclasses
import functools
from typing import NamedTuple

import keras
import numpy as np

from tf_prune.keras import _internals
from tf_prune.keras.wrapper import PruneWrapper

_L = keras.layers
# Producers: the kernel's input and output axes, as functions of its rank.
_PRODUCERS = {
    _L.Dense: (lambda rank: 0, lambda rank: 1),
    **{cls: (lambda rank: rank - 2, lambda rank: rank - 1)
       for cls in (_L.Conv1D, _L.Conv2D, _L.Conv3D)},
    **{cls: (lambda rank: rank - 1, lambda rank: rank - 2)
       for cls in (_L.Conv1DTranspose, _L.Conv2DTranspose,
                   _L.Conv3DTranspose)},
}
# Layers that compute each channel from the same channel only and map 0 to 0
# (inference mode; in training Dropout scales, which keeps 0 too).
_CHANNELWISE = (
    _L.Dropout, _L.SpatialDropout1D, _L.SpatialDropout2D, _L.SpatialDropout3D,
    _L.GaussianDropout, _L.Identity,
    _L.MaxPooling1D, _L.MaxPooling2D, _L.MaxPooling3D,
    _L.AveragePooling1D, _L.AveragePooling2D, _L.AveragePooling3D,
    _L.GlobalMaxPooling1D, _L.GlobalMaxPooling2D, _L.GlobalMaxPooling3D,
    _L.GlobalAveragePooling1D, _L.GlobalAveragePooling2D,
    _L.GlobalAveragePooling3D,
    _L.ZeroPadding1D, _L.ZeroPadding2D, _L.ZeroPadding3D,
    _L.Cropping1D, _L.Cropping2D, _L.Cropping3D,
    _L.UpSampling1D, _L.UpSampling2D, _L.UpSampling3D,
)
# Merges whose output channel is 0 when every input's is; Multiply's is 0
# when any input's is.
_ALL_ZERO_MERGES = (_L.Add, _L.Subtract, _L.Average, _L.Maximum, _L.Minimum)
# Keras' own activations that act on each value alone (softmax, log_softmax,
# glu and sparsemax mix channels).
_ELEMENTWISE_ACTIVATIONS = frozenset((
    'celu', 'elu', 'exponential', 'gelu', 'hard_shrink', 'hard_sigmoid',
    'hard_silu', 'hard_tanh', 'leaky_relu', 'linear', 'log_sigmoid', 'mish',
    'relu', 'relu6', 'selu', 'sigmoid', 'silu', 'soft_shrink', 'softplus',
    'softsign', 'sparse_plus', 'sparse_sigmoid', 'squareplus', 'tanh',
    'tanh_shrink'))
# Keras ops (`x + 3.0` in a Functional graph is an `Add` op, not a layer).
_OP_MERGES = ('Add', 'Subtract', 'Multiply')


@dataclasses.dataclass
class Axis:
    """A weight axis, or a size in a layer's config, whose positions are
    channels.

    Attributes:
      path: the layer's name, after the names of the models it is nested in
        (`'block/conv'`).
      layer: the layer.
      weight: the weight's attribute name (`'kernel'`, `'gamma'`, ...);
        for a size, `'target_shape'` (a Reshape's) or `'inputs[i]'` (the
        shape of a nested model's i-th input, with its batch axis).
      variable: the weight (None for a size).
      axis: the axis of the weight (or of the shape).
      role: what the positions are to their channel: `'filter'` (a
        producer's output slice), `'bias'`, `'norm'` (BatchNormalization's
        gamma or beta), `'stat'` (its moving mean or variance), `'depthwise'`
        (a depthwise kernel slice or bias), `'input'` (a consumer's input
        slice), `'alpha'` (PReLU's) or `'shape'` (a size).
      elements: the element at each position.
    """
    path: str
    layer: object
    weight: str
    variable: object
    axis: int
    role: str
    elements: np.ndarray


@dataclasses.dataclass(frozen=True)
class Space:
    """Elements made together: `size` channels from `start` on.

    `kind` is `'producer'` (a producer's output channels), `'input'` (a model
    input's) or `'other'` (a layer's that is not followed).
    """
    kind: str
    path: str
    start: int
    size: int


@dataclasses.dataclass(frozen=True)
class Trace:
    """What `trace` found.

    Attributes:
      roots: the representative of each element's set (joined elements are
        removed together).
      spaces: the `Space`s, in the order they were made (elements are
        numbered in that order).
      axes: the `Axis`es, in the order they were met.
      fixes: `(elements, reason)` pairs: the sets of these elements cannot
        be removed.
      layers: `{path: layer}` for every layer called in the graph, nested
        models and their layers too (a wrapped layer, not its wrapper).
      shapes: `{path: (input shape, output shape)}` of each layer's first
        call, for those with one input and one output.
    """
    roots: np.ndarray
    spaces: tuple
    axes: tuple
    fixes: tuple
    layers: dict
    shapes: dict


class _Flow(NamedTuple):
    """A tensor's channels: the element and the blame at each position."""
    elements: np.ndarray
    blame: np.ndarray


class _Call(NamedTuple):
    operation: object
    args: tuple
    inputs: list
    outputs: list
    path: str


def trace(model):
    """Follows the channels of a Sequential or Functional model.

    Args:
      model: a built Sequential or Functional model.

    Returns:
      A `Trace`.
    """
    tracer = _Tracer()
    inputs = []
    for tensor in model.inputs:
        size = _channels(tensor)
        if size is None:
            inputs.append(None)
            continue
        elements = tracer.new_elements('input', tensor.name, size)
        reason = f"model input '{tensor.name}'"
        tracer.fix(elements, reason)
        inputs.append(tracer.flow(elements, reason))
    outputs = tracer.walk(model, '', inputs)
    for tensor, flow in zip(model.outputs, outputs):
        if flow is not None:
            tracer.fix(flow.elements,
                       f"model output of '{tracer.made_by(tensor)}'")
    return tracer.result()


def _channels(tensor):
    """The size of `tensor`'s channel (last) axis, or None if it has none."""
    shape = tensor.shape
    if len(shape) < 2 or shape[-1] is None:
        return None
    return shape[-1]


@functools.lru_cache(maxsize=None)
def _activation_at_zero(name):
    """Keras' activation `name` at 0."""
    value = keras.activations.get(name)(np.zeros((1,), np.float32))
    return float(keras.ops.convert_to_numpy(value)[0])


def _at_zero(activation):
    """`activation(0)`, or None if `activation` is not one of Keras'
    elementwise activations."""
    name = getattr(activation, '__name__', None)
    if (name not in _ELEMENTWISE_ACTIVATIONS
            or keras.activations.get(name) is not activation):
        return None
    return _activation_at_zero(name)


def _unsupported(layer):
    """Why a layer of a followed class cannot be followed, or None."""
    if getattr(layer, 'data_format', 'channels_last') != 'channels_last':
        return 'channels_first'
    if getattr(layer, 'groups', 1) != 1:
        return 'grouped convolution'
    if getattr(layer, 'lora_enabled', False):
        return 'LoRA weights'
    if getattr(layer, 'quantization_mode', None):
        return 'quantized weights'
    return None


class _Tracer:
    """Walks a graph once, numbering, joining and fixing elements."""

    def __init__(self):
        self._parent = []
        self._spaces = []
        self._axes = {}
        self._fixes = []
        self._blames = []
        self._layers = {}
        self._paths = {}
        self._made = {}
        self._made_by = {}
        self._shapes = {}

    # Elements, their sets, their fixes and blames.

    def new_elements(self, kind, path, size):
        """`size` new elements, as a new `Space`."""
        start = len(self._parent)
        self._parent.extend(range(start, start + size))
        self._spaces.append(Space(kind, path, start, size))
        return np.arange(start, start + size)

    def _find(self, element):
        parent = self._parent
        while parent[element] != element:
            parent[element] = parent[parent[element]]
            element = parent[element]
        return element

    def join(self, first, second):
        """Puts the elements of `first` and `second` pairwise in one set."""
        for a, b in zip(first.tolist(), second.tolist()):
            a, b = self._find(a), self._find(b)
            if a != b:
                self._parent[max(a, b)] = min(a, b)

    def fix(self, elements, reason):
        if len(elements):
            self._fixes.append((elements, reason))

    def flow(self, elements, reason=None):
        """A flow of `elements`, all blamed on `reason` (or none)."""
        blame = -1 if reason is None else self._blame(reason)
        return _Flow(elements, np.full(len(elements), blame))

    def made_by(self, tensor):
        """The path of the layer whose call made `tensor`."""
        return self._made_by.get(id(tensor), tensor.name)

    def _blame(self, reason):
        self._blames.append(reason)
        return len(self._blames) - 1

    def result(self):
        roots = np.array([self._find(e) for e in range(len(self._parent))],
                         dtype=np.int64)
        return Trace(roots, tuple(self._spaces), tuple(self._axes.values()),
                     tuple(self._fixes), dict(self._layers),
                     dict(self._shapes))

    # Walking.

    def walk(self, model, prefix, inputs):
        """Follows `inputs` (flows of `model.inputs`) through `model`."""
        flows = {id(t): flow for t, flow in zip(model.inputs, inputs)}
        for operation, args, _, ins, outs in _internals.graph_calls(model):
            call = _Call(operation, args, ins, outs, prefix + operation.name)
            results = self._call(call, [flows[id(t)] for t in ins])
            flows.update(zip(map(id, outs), results))
            self._made_by.update((id(t), call.path) for t in outs)
        return [flows[id(t)] for t in model.outputs]

    def _call(self, call, flows):
        operation = call.operation
        if not isinstance(operation, keras.layers.Layer):
            return self._op(call, flows)
        if isinstance(operation, PruneWrapper):
            operation = operation.layer
        call = call._replace(
            operation=operation,
            path=self._paths.setdefault(id(operation), call.path))
        if _internals.is_graph_model(operation):
            return self._nested(call, flows)
        self._layers.setdefault(call.path, operation)
        if len(call.inputs) == 1 and len(call.outputs) == 1:
            self._shapes.setdefault(call.path, (tuple(call.inputs[0].shape),
                                                tuple(call.outputs[0].shape)))
        rule = _RULES.get(type(operation))
        problem = _unsupported(operation) if rule else 'not followed'
        if problem is None and (len(flows) == 0 or None in flows or any(
                _channels(t) is None for t in call.outputs)):
            problem = 'a tensor without a channel axis'
        if problem is None and len(flows) > 1 and rule not in _MERGES:
            problem = 'reads several tensors'
        if problem:
            return self._unknown(call, flows, problem)
        return rule(self, call, flows)

    def _nested(self, call, flows):
        """A nested model: its input shapes hold channels too."""
        model = call.operation
        self._layers.setdefault(call.path, model)
        for index, (tensor, flow) in enumerate(zip(model.inputs, flows)):
            if flow is not None:
                self._register(call, f'inputs[{index}]', len(tensor.shape) - 1,
                               flow.elements, 'shape')
        return self.walk(model, call.path + '/', flows)

    def _unknown(self, call, flows, problem):
        """Fixes the channels a call reads and makes."""
        what = f"{type(call.operation).__name__} '{call.path}' ({problem})"
        for flow in flows:
            if flow is not None:
                self.fix(flow.elements, f'read by {what}')
        results = []
        for tensor in call.outputs:
            size = _channels(tensor)
            if size is None:
                results.append(None)
                continue
            elements = self.new_elements('other', call.path, size)
            self.fix(elements, f'made by {what}')
            results.append(self.flow(elements, f'made by {what}'))
        return results

    def _register(self, call, weight, axis, elements, role):
        """Records that positions along `weight`'s `axis` are `elements`."""
        layer = call.operation
        variable = None if role == 'shape' else getattr(layer, weight, None)
        if variable is None and role != 'shape':
            return  # no bias, no gamma, ...
        key = (id(layer), weight, axis)
        if key in self._axes:
            self.join(self._axes[key].elements, elements)
        else:
            self._axes[key] = Axis(call.path, layer, weight, variable, axis,
                                   role, elements)

    # Rules, one per kind of layer.

    def _read(self, call, flow, weight, axis):
        """A consumer reads `flow` through `weight`'s `axis`: its slices can
        go only where the channel is exactly 0."""
        self._register(call, weight, axis, flow.elements, 'input')
        for index in np.unique(flow.blame[flow.blame >= 0]).tolist():
            self.fix(flow.elements[flow.blame == index],
                     f"nonzero where '{call.path}' reads it: "
                     f'{self._blames[index]}')

    def _produce(self, call, weight, axis):
        """A producer's output channels: `weight`'s `axis` and the bias."""
        layer = call.operation
        variable = getattr(layer, weight)
        elements = self._made.get(id(layer))
        if elements is None:
            elements = self.new_elements('producer', call.path,
                                         variable.shape[axis])
            self._made[id(layer)] = elements
        self._register(call, weight, axis, elements, 'filter')
        self._register(call, 'bias', 0, elements, 'bias')
        return self._activate(call, self.flow(elements), layer.activation)

    def _activate(self, call, flow, activation):
        """`flow` after an activation of `call`'s layer."""
        name = getattr(activation, '__name__', type(activation).__name__)
        value = _at_zero(activation)
        if value is None:
            reason = f"'{call.path}' applies {name}, which mixes channels"
            self.fix(flow.elements, reason)
            return self.flow(flow.elements, reason)
        return self._maps_zero_to(call, flow, value, name)

    def _maps_zero_to(self, call, flow, value, what):
        if value == 0:
            return flow
        blame = self._blame(f"'{call.path}' maps 0 to {value:g} ({what})")
        return _Flow(flow.elements, np.full(len(flow.elements), blame))

    def producer(self, call, flows):
        (flow,) = flows
        in_axis, out_axis = _PRODUCERS[type(call.operation)]
        rank = len(call.operation.kernel.shape)
        self._read(call, flow, 'kernel', in_axis(rank))
        return [self._produce(call, 'kernel', out_axis(rank))]

    def separable(self, call, flows):
        (flow,) = flows
        layer = call.operation
        rank = len(layer.pointwise_kernel.shape)
        self._read(call, flow, 'depthwise_kernel', rank - 2)
        self._register(call, 'pointwise_kernel', rank - 2,
                       np.repeat(flow.elements, layer.depth_multiplier),
                       'input')
        return [self._produce(call, 'pointwise_kernel', rank - 1)]

    def depthwise(self, call, flows):
        (flow,) = flows
        layer = call.operation
        rank = len(layer.kernel.shape)
        self._register(call, 'kernel', rank - 2, flow.elements, 'depthwise')
        elements = np.repeat(flow.elements, layer.depth_multiplier)
        self._register(call, 'bias', 0, elements, 'depthwise')
        # Zeroing its kernel slice (and bias) zeroes the channel whatever it
        # reads.
        return [self._activate(call, self.flow(elements), layer.activation)]

    def batch_norm(self, call, flows):
        (flow,) = flows
        layer = call.operation
        if layer.axis not in (-1, len(call.inputs[0].shape) - 1):
            return self._unknown(call, flows, 'normalizes another axis')
        scaled = layer.gamma is not None
        for weight, role in (('gamma', 'norm'), ('beta', 'norm'),
                             ('moving_mean', 'stat' if scaled else 'norm'),
                             ('moving_variance', 'stat')):
            self._register(call, weight, 0, flow.elements, role)
        if scaled:
            # gamma * normalized + beta is 0 once gamma and beta are,
            # whatever the layer reads.
            return [self.flow(flow.elements)]
        # (x - mean) / std + beta is 0 where x is, once mean and beta are.
        return flows

    def channelwise(self, call, flows):
        return flows

    def activation(self, call, flows):
        (flow,) = flows
        activation = call.operation.activation
        if _at_zero(activation) is None:
            name = getattr(activation, '__name__', 'a custom function')
            return self._unknown(call, flows, f'{name} is not followed')
        return [self._activate(call, flow, activation)]

    def activation_layer(self, call, flows):
        (flow,) = flows
        value = keras.ops.convert_to_numpy(
            call.operation(np.zeros((1, 1), np.float32)))
        return [self._maps_zero_to(call, flow, float(value.flat[0]),
                                   type(call.operation).__name__)]

    def prelu(self, call, flows):
        (flow,) = flows
        alpha = call.operation.alpha
        if alpha.shape[-1] == len(flow.elements) > 1:
            self._register(call, 'alpha', len(alpha.shape) - 1,
                           flow.elements, 'alpha')
        return flows  # alpha * 0 = 0

    def merge(self, call, flows, any_zero=False):
        """Joins the channels an elementwise merge combines."""
        sizes = {len(flow.elements) for flow in flows}
        if sizes != {_channels(call.outputs[0])}:
            return self._unknown(call, flows, 'broadcasts across channels')
        for flow in flows[1:]:
            self.join(flows[0].elements, flow.elements)
        blames = np.stack([flow.blame for flow in flows])
        if any_zero:
            blame = np.where((blames < 0).any(axis=0), -1, blames.max(axis=0))
        else:
            blame = blames.max(axis=0)
        return [_Flow(flows[0].elements, blame)]

    def multiply(self, call, flows):
        return self.merge(call, flows, any_zero=True)

    def concatenate(self, call, flows):
        rank = len(call.outputs[0].shape)
        if call.operation.axis not in (-1, rank - 1):
            # Joined along another axis, channel c meets channel c.
            return self.merge(call, flows)
        return [_Flow(np.concatenate([flow.elements for flow in flows]),
                      np.concatenate([flow.blame for flow in flows]))]

    def reshape(self, call, flows):
        """Flatten, or a Reshape whose last axis is a multiple of its
        input's: position p holds input channel p % C."""
        (flow,) = flows
        size = _channels(call.outputs[0])
        if size % len(flow.elements):
            return self._unknown(call, flows, 'moves values across channels')
        repeats = size // len(flow.elements)
        result = _Flow(np.tile(flow.elements, repeats),
                       np.tile(flow.blame, repeats))
        if isinstance(call.operation, _L.Reshape):
            self._register(call, 'target_shape',
                           len(call.operation.target_shape) - 1,
                           result.elements, 'shape')
        return [result]

    def _op(self, call, flows):
        """A Keras op in the graph: `+`, `-` or `*` of tensors or of a tensor
        and a number."""
        name = type(call.operation).__name__
        numbers = [arg for arg in call.args
                   if not isinstance(arg, keras.KerasTensor)]
        if (name not in _OP_MERGES or len(call.args) != 2 or None in flows
                or any(_channels(t) is None for t in call.outputs)):
            return self._unknown(call, flows, 'not followed')
        if not numbers:
            return self.merge(call, flows, any_zero=name == 'Multiply')
        if np.ndim(numbers[0]) or _channels(call.outputs[0]) != len(
                flows[0].elements):
            return self._unknown(call, flows, 'broadcasts across channels')
        (flow,) = flows
        if name == 'Multiply':
            return flows
        value = float(numbers[0])
        if name == 'Subtract' and isinstance(call.args[0], keras.KerasTensor):
            value = -value
        return [self._maps_zero_to(call, flow, value, name)]


_RULES = {
    **{cls: _Tracer.producer for cls in _PRODUCERS},
    _L.SeparableConv1D: _Tracer.separable,
    _L.SeparableConv2D: _Tracer.separable,
    _L.DepthwiseConv1D: _Tracer.depthwise,
    _L.DepthwiseConv2D: _Tracer.depthwise,
    _L.BatchNormalization: _Tracer.batch_norm,
    **{cls: _Tracer.channelwise for cls in _CHANNELWISE},
    _L.Activation: _Tracer.activation,
    _L.ReLU: _Tracer.activation_layer,
    _L.LeakyReLU: _Tracer.activation_layer,
    _L.ELU: _Tracer.activation_layer,
    _L.PReLU: _Tracer.prelu,
    **{cls: _Tracer.merge for cls in _ALL_ZERO_MERGES},
    _L.Multiply: _Tracer.multiply,
    _L.Concatenate: _Tracer.concatenate,
    _L.Flatten: _Tracer.reshape,
    _L.Reshape: _Tracer.reshape,
}
# The rules for layers that read several tensors.
_MERGES = (_Tracer.merge, _Tracer.multiply, _Tracer.concatenate)
