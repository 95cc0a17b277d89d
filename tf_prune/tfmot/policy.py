"""tfmot 0.8.1's pruning policies: which layers to wrap, and model checks.

`PruneForLatencyOnXNNPack` prunes the 1x1 Conv2D layers of a model XNNPACK
can run with sparse kernels (Elsen et al., "Fast Sparse ConvNets", arXiv
1911.09723): a stem of ZeroPadding2D(1) and a 3x3, stride-2, valid Conv2D on
3 channels, then only layers XNNPACK's sparse path takes, up to a
GlobalAveragePooling2D on every output branch. The checks are tfmot's, on
the Keras 3 layer classes; a Keras operation in a Functional graph (the
Keras 3 counterpart of tf_keras' `TFOpLambda`) passes when it adds,
subtracts or multiplies.
"""

import abc
import collections

import keras

from tf_prune.keras import _internals

_ELEMENTWISE_OPS = ('Add', 'Subtract', 'Multiply', 'Identity')
_SPARSE_ACTIVATIONS = ('relu', 'relu6', 'leaky_relu', 'elu', 'sigmoid')


class PruningPolicy(abc.ABC):
    """Chooses the layers `prune_low_magnitude` wraps, and checks a model.

    Subclass it for a custom policy; pass it as `pruning_policy`.
    """

    @abc.abstractmethod
    def allow_pruning(self, layer):
        """Whether to wrap `layer`.

        Args:
          layer: a layer of the model being pruned.

        Returns:
          True to wrap it.
        """
        raise NotImplementedError

    @abc.abstractmethod
    def ensure_model_supports_pruning(self, model):
        """Raises ValueError for a model the policy cannot prune.

        Args:
          model: the `keras.Model` about to be pruned.
        """
        raise NotImplementedError


class _Graph:
    """Producers and consumers of a Sequential or Functional model's calls.

    The model's inputs are nodes too (`('input', index)`), with no producers.
    """

    def __init__(self, model):
        producer = {}
        for index, tensor in enumerate(model.inputs):
            producer[id(tensor)] = ('input', index)
        self._producers = collections.defaultdict(set)
        self._consumers = collections.defaultdict(list)
        for operation, _, _, inputs, outputs in _internals.graph_calls(model):
            for tensor in inputs:
                source = producer.get(id(tensor))
                if source is not None:
                    self._producers[operation].add(source)
                    self._consumers[source].append(operation)
            for tensor in outputs:
                producer[id(tensor)] = operation
        self.inputs = [('input', i) for i in range(len(model.inputs))]
        self.outputs = {producer[id(t)] for t in model.outputs}

    def producers(self, node):
        return set(self._producers.get(node, ()))

    def consumers(self, node):
        return list(self._consumers.get(node, ()))


def _lookup(sources, stop, next_nodes):
    """The nodes where `stop` holds, reached from `sources` by `next_nodes`;
    empty when some path ends before any (tfmot's `_lookup_layers`)."""
    to_visit, seen, found = set(sources), set(sources), set()
    while to_visit:
        node = to_visit.pop()
        if stop(node):
            found.add(node)
            continue
        following = next_nodes(node)
        if not following:
            return set()
        for item in following:
            if item not in seen:
                seen.add(item)
                to_visit.add(item)
    return found


def _zero_padding(graph, layer, padding):
    producers = list(graph.producers(layer))
    return (len(producers) == 1
            and isinstance(producers[0], keras.layers.ZeroPadding2D)
            and producers[0].padding == padding)


class PruneForLatencyOnXNNPack(PruningPolicy):
    """Prunes only 1x1 Conv2D layers, in models XNNPACK runs sparse."""

    def allow_pruning(self, layer):
        """Only Conv2D layers with `kernel_size=(1, 1)`."""
        return (isinstance(layer, keras.layers.Conv2D)
                and layer.kernel_size == (1, 1))

    def _starts(self, graph, layer):
        """The stem: a 3x3x3, stride-2, valid Conv2D after ZeroPadding2D(1)."""
        return (isinstance(layer, keras.layers.Conv2D) and layer.built
                and tuple(layer.kernel.shape[:3]) == (3, 3, 3)
                and layer.strides == (2, 2)
                and layer.padding.lower() == 'valid'
                and _zero_padding(graph, layer, ((1, 1), (1, 1))))

    def _supported(self, graph, layer):
        """Whether XNNPACK's sparse path takes `layer` (tfmot's list)."""
        if isinstance(layer, (keras.layers.Add, keras.layers.Multiply,
                              keras.layers.ZeroPadding2D, keras.layers.ReLU,
                              keras.layers.LeakyReLU, keras.layers.ELU,
                              keras.layers.Dropout)):
            return True
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            return self._supported_depthwise(graph, layer)
        if isinstance(layer, keras.layers.Conv2D):
            return (layer.groups == 1 and layer.dilation_rate == (1, 1)
                    and layer.kernel_size == (1, 1)
                    and layer.strides == (1, 1))
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            return layer.keepdims
        if isinstance(layer, keras.layers.BatchNormalization):
            return layer.axis in (3, -1)  # channels last, of NHWC
        if isinstance(layer, keras.layers.UpSampling2D):
            return layer.interpolation == 'bilinear'
        if isinstance(layer, keras.layers.Activation):
            return keras.activations.serialize(
                layer.activation) in _SPARSE_ACTIVATIONS
        if isinstance(layer, keras.layers.Wrapper):  # a pruning wrapper
            return self._supported(graph, layer.layer)
        return (not isinstance(layer, keras.layers.Layer)
                and type(layer).__name__ in _ELEMENTWISE_OPS)

    @staticmethod
    def _supported_depthwise(graph, layer):
        """3x3 or 5x5, stride 1 same, or stride 1-2 valid after padding."""
        padding = layer.padding.lower()
        strides_1_or_2 = layer.strides in ((1, 1), (2, 2))
        cases = (
            (layer.kernel_size == (3, 3) and layer.strides == (1, 1)
             and padding == 'same'),
            (layer.kernel_size == (3, 3) and strides_1_or_2
             and padding == 'valid'
             and _zero_padding(graph, layer, ((1, 1), (1, 1)))),
            (layer.kernel_size == (5, 5) and layer.strides == (1, 1)
             and padding == 'same'),
            (layer.kernel_size == (5, 5) and strides_1_or_2
             and padding == 'valid'
             and _zero_padding(graph, layer, ((2, 2), (2, 2)))))
        return (layer.depth_multiplier == 1
                and layer.dilation_rate == (1, 1) and any(cases))

    def ensure_model_supports_pruning(self, model):
        """tfmot's checks: a built graph model with the stem on every input
        branch, a GlobalAveragePooling2D on every output branch, and only
        supported layers between them.

        Raises:
          ValueError: tfmot's message for the first check that fails.
        """
        if not _internals.is_graph_model(model):
            raise ValueError('Subclassed models are not supported currently.')
        if not model.built:
            raise ValueError('Unbuilt models are not supported currently.')
        graph = _Graph(model)
        starts = _lookup(graph.inputs, lambda n: self._starts(graph, n),
                         graph.consumers)
        if not starts:
            raise ValueError(
                'Could not find `Conv2D 3x3` layer with stride 2x2, `input '
                'filters == 3` and `VALID` padding and preceding '
                '`ZeroPadding2D` with `padding == 1` in all input branches '
                'of the model')
        ends = _lookup(graph.outputs, lambda n: isinstance(
            n, keras.layers.GlobalAveragePooling2D), graph.producers)
        if not ends:
            raise ValueError('Could not find a `GlobalAveragePooling2D` layer '
                             'in all output branches')

        def check(node):
            if node not in ends and not self._supported(graph, node):
                raise ValueError(
                    f'Layer {type(node).__name__} is not supported for the '
                    f'{type(self).__name__} pruning policy')
            return node in ends

        _lookup([c for s in starts for c in graph.consumers(s)], check,
                graph.consumers)
