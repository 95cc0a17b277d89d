"""Channel-pruned models read back, and what shrinking them removed.

`load_channel_pruned(path)` reads a model pruned with `structure=channel`
from a training directory or a `.keras` file, refusing (`NotChannelPruned`)
what has no channel masks to shrink by: a graph (a TF1 checkpoint, a
SavedModel), a model pruned with `structure=weight`, an unpruned one.

`channel_report(pruned, shrunk)` compares a pruned model with its shrunk
model (a `.keras` file, a frozen GraphDef, a SavedModel, or a Keras model),
layer by layer: output channels, parameters and FLOPs before and after (see
`cost.FLOPS_CONVENTION`). The numbers after are those of
`shrink(pruned)`, and the shrunk model is checked to hold its weights, of
their shapes (found by their Keras paths, which frozen graphs name their
constants after), so a file shrunk from another model or checkpoint is
refused rather than misreported. A TFLite file cannot be checked so: the
converter folds biases and BatchNormalization into other tensors and renames
them.
"""

import collections
import dataclasses
import os

import keras

from tf_prune.core import errors
from tf_prune.export import sources
from tf_prune.export import sparsity_report
from tf_prune.keras import _internals
from tf_prune.keras.wrapper import find_wrappers
from tf_prune.structured import cost as cost_lib
from tf_prune.structured import groups as groups_lib
from tf_prune.structured.shrink import shrink

# Inputs that are graphs, which no channel mask or layer survives in.
_GRAPH_KINDS = {'tf1_checkpoint': 'a TF1 checkpoint directory',
                'saved_model': 'a SavedModel'}


class NotChannelPruned(ValueError):
    """A model with no channel masks to shrink by.

    Attributes:
      reason: what the model is instead, one clause naming it.
      strippable: whether it is pruned (or a graph) that stripping serves:
        its masks fold into its weights instead. False for a model with no
        mask at all, which must be pruned with `structure=channel` first.
    """

    def __init__(self, reason, strippable):
        fix = ('strip it instead (tf_prune.strip_pruning, tf_prune.export)'
               if strippable else 'prune it with structure=channel first')
        super().__init__(f'{reason}; shrinking removes the channels of a '
                         f'Keras model pruned with structure=channel: {fix}')
        self.reason = reason
        self.strippable = strippable


def _listed(names, most=3):
    shown = ', '.join(names[:most])
    return shown + (f' and {len(names) - most} more' if len(names) > most
                    else '')


def check_channel_pruned(model, name=None):
    """Raises unless `model` holds the channel masks `shrink` reads.

    Args:
      model: a Keras model.
      name: what to call it in messages (a path); default its name.

    Raises:
      NotChannelPruned: it is pruned with `structure=weight`, or has no
        channel mask.
    """
    name = name or model.name
    wrappers = find_wrappers(model)
    weight_masked = [w.name for w in wrappers if w.channels is None]
    if weight_masked:
        raise NotChannelPruned(
            f'{name} is pruned with structure=weight ({_listed(weight_masked)} '
            f'mask single weights, not channels)', strippable=True)
    if not any(w.channel_state is not None for w in wrappers):
        raise NotChannelPruned(
            f'{name} has no channel masks'
            + ('' if wrappers else ' (no layer of it is pruned)'),
            strippable=False)


def load_channel_pruned(path):
    """The model pruned with `structure=channel` at `path`.

    Args:
      path: a training directory or a `.keras` file.

    Returns:
      The pruned Keras model, with its channel masks.

    Raises:
      ModelFileError: `path` is unreadable (see `sources.load`).
      NotChannelPruned: a graph (found before it is read), or a model
        without channel masks.
    """
    path = os.fspath(path)
    kind = sources.kind(path)
    if kind in _GRAPH_KINDS:
        raise NotChannelPruned(
            f'{path} is {_GRAPH_KINDS[kind]}, a graph without Keras layers',
            strippable=True)
    model = sources.load(path)
    check_channel_pruned(model, path)
    return model


@dataclasses.dataclass(frozen=True)
class Change:
    """A count before and after shrinking."""
    before: int
    after: int

    @property
    def kept(self):
        """after / before (1 for nothing before)."""
        return self.after / self.before if self.before else 1.0


@dataclasses.dataclass(frozen=True)
class LayerChannels:
    """One layer with weights, before and after shrinking.

    Attributes:
      layer: its path (`'block/conv'` in a nested model).
      kind: its class name.
      channels: its output channels (the last axis of its output), or None
        for a layer with several inputs or outputs.
      parameters: its weights' elements.
      flops: its FLOPs per example.
    """
    layer: str
    kind: str
    channels: Change
    parameters: Change
    flops: Change


@dataclasses.dataclass(frozen=True)
class ChannelReport:
    """The layers of a pruned model with weights, and the model's totals.

    Attributes:
      layers: `LayerChannels`, in the order the model calls them.
      parameters: the model's parameters (every weight, normalization
        statistics included).
      flops: its FLOPs per example (`cost.FLOPS_CONVENTION`).
    """
    layers: tuple
    parameters: Change
    flops: Change

    def as_dict(self):
        """The report as JSON-ready values."""
        def change(value):
            return None if value is None else dataclasses.asdict(value)
        return {
            'layers': [{'layer': row.layer, 'class': row.kind,
                        'channels': change(row.channels),
                        'parameters': change(row.parameters),
                        'flops': change(row.flops)} for row in self.layers],
            'total': {'parameters': dict(change(self.parameters),
                                         kept=self.parameters.kept),
                      'flops': dict(change(self.flops), kept=self.flops.kept)},
            'flops_convention': cost_lib.FLOPS_CONVENTION}

    def format_table(self):
        """The report as an aligned text table, totals last."""
        def arrow(value):
            return '-' if value is None else f'{value.before} -> {value.after}'
        lines = [('layer', 'class', 'channels', 'parameters', 'FLOPs')]
        for row in self.layers:
            lines.append((row.layer, row.kind, arrow(row.channels),
                          arrow(row.parameters), arrow(row.flops)))
        lines.append(('total', '', '', arrow(self.parameters),
                      arrow(self.flops)))
        lines.append(('kept', '', '', f'{self.parameters.kept:.4f}',
                      f'{self.flops.kept:.4f}'))
        widths = [max(len(line[i]) for line in lines) for i in range(5)]
        return '\n'.join(
            f'{line[0]:<{widths[0]}}  {line[1]:<{widths[1]}}  '
            f'{line[2]:>{widths[2]}}  {line[3]:>{widths[3]}}  '
            f'{line[4]:>{widths[4]}}'.rstrip() for line in lines)


def _weights_of_keras(model, name):
    if find_wrappers(model):
        raise errors.ModelFileError(
            f'{name} is a pruned model (it holds PruneWrappers), not a shrunk '
            f'one; shrink it first (tf_prune.shrink, or strip_pruning_vars '
            f'--shrink)')
    return {variable.path: tuple(variable.shape) for variable in model.weights}


def _weights_of_graph(graph_def):
    return {node.name: tuple(d.size for d in
                             node.attr['value'].tensor.tensor_shape.dim)
            for node in graph_def.node if node.op == 'Const'}


def _file_weights(path):
    """`{name: shape}` of the weights of the shrunk model file `path`.

    Raises:
      ModelFileError: unreadable, a TFLite file, or a checkpoint directory.
    """
    if os.path.isfile(path) and path.endswith('.tflite'):
        raise errors.ModelFileError(
            f'{path} is a TFLite file, whose converter folds biases and '
            f'BatchNormalization into other tensors and renames them, so its '
            f'channels cannot be checked layer by layer; give the shrunk model '
            f'as a .keras file, a .pb or a SavedModel')
    if os.path.isfile(path) and path.endswith('.pb'):
        return _weights_of_graph(sparsity_report.read_graph_def(path))
    kind = sources.kind(path)
    if kind == 'keras':
        return _weights_of_keras(sources.load(path), path)
    if kind == 'saved_model':
        return _weights_of_graph(sources.load(path).graph_def)
    raise errors.ModelFileError(
        f'{path} is a checkpoint directory, not a shrunk model; give the '
        f'.keras file, .pb or SavedModel the shrunk model was written to')


def _name_prefix(expected, found):
    """The prefix the names of `found` put before the Keras paths of
    `expected` (a SavedModel's, say), by majority; '' for none."""
    prefixes = collections.Counter()
    for path in expected:
        for name in found:
            if name == path or name.endswith('/' + path):
                prefixes[name[:len(name) - len(path)]] += 1
    if not prefixes:
        return ''
    return max(prefixes, key=lambda prefix: (prefixes[prefix], -len(prefix)))


def _shape(shape):
    return 'x'.join(map(str, shape)) or 'a scalar'


def _check_holds(expected, found, shrunk_name, pruned_name):
    """Raises unless `found` holds each weight of `expected`, of its shape.

    Raises:
      ValueError: a weight missing or of another shape.
    """
    prefix = _name_prefix(expected, found)
    for path, shape in expected.items():
        name = prefix + path
        if name not in found and name + '/masked_weight' in found:
            raise ValueError(
                f'{shrunk_name} holds the masked weight {name}/masked_weight '
                f'of a stripped pruned model: its channels are zeroed, not '
                f'removed; shrink {pruned_name} instead (tf_prune.shrink, or '
                f'strip_pruning_vars --shrink)')
        if name not in found:
            raise ValueError(
                f'{shrunk_name} has no weight {path}, which the model shrunk '
                f'from {pruned_name} has: it is not that model')
        if found[name] != shape:
            raise ValueError(
                f'{path} is {_shape(found[name])} in {shrunk_name}, but '
                f'{_shape(shape)} in the model shrunk from {pruned_name}: '
                f'{shrunk_name} is not that model (stripped instead of shrunk, '
                f'or shrunk from another model or checkpoint)')


def _layer_costs(found):
    """`{layer path: (parameters, MACs)}` of the layers with weights."""
    costs = {}
    for weight in cost_lib.weight_costs(found):
        parameters, macs = weight.count()
        total = costs.get(weight.path, (0, 0))
        costs[weight.path] = (total[0] + parameters, total[1] + macs)
    return costs


def _output_channels(found, path):
    shapes = found.shapes.get(path)
    return None if shapes is None else int(shapes[1][-1])


def channel_report(pruned, shrunk=None):
    """What shrinking a channel-pruned model removes, layer by layer.

    Args:
      pruned: a model pruned with `structure=channel`, or the path of one
        (a training directory or a `.keras` file).
      shrunk: its shrunk model: the path of a `.keras` file, a frozen
        GraphDef (`.pb`) or a SavedModel, or a Keras model; None for
        `shrink(pruned)`. It must hold the weights of `shrink(pruned)`, of
        their shapes.

    Returns:
      A `ChannelReport`.

    Raises:
      NotChannelPruned: `pruned` has no channel masks.
      ModelFileError: a file unreadable, or `shrunk` a TFLite file (see the
        module docstring) or a checkpoint directory.
      ValueError: `shrunk` is not `pruned` shrunk.
    """
    if isinstance(pruned, keras.Model):
        pruned_name = pruned.name
        check_channel_pruned(pruned)
    else:
        pruned_name = os.fspath(pruned)
        pruned = load_channel_pruned(pruned_name)
    expected = shrink(pruned)
    if shrunk is not None:
        if isinstance(shrunk, keras.Model):
            shrunk_name = shrunk.name
            found_weights = _weights_of_keras(shrunk, shrunk_name)
        else:
            shrunk_name = os.fspath(shrunk)
            found_weights = _file_weights(shrunk_name)
        _check_holds({v.path: tuple(v.shape) for v in expected.weights},
                     found_weights, shrunk_name, pruned_name)
    before = groups_lib.find_channel_groups(pruned)
    after = groups_lib.find_channel_groups(expected)
    costs_before, costs_after = _layer_costs(before), _layer_costs(after)
    rows = []
    for path, layer in before.layers.items():
        if _internals.is_graph_model(layer) or path not in costs_before:
            continue
        channels = _output_channels(before, path)
        rows.append(LayerChannels(
            path, type(layer).__name__,
            None if channels is None else Change(
                channels, _output_channels(after, path)),
            Change(costs_before[path][0], costs_after[path][0]),
            Change(2 * costs_before[path][1], 2 * costs_after[path][1])))
    return ChannelReport(
        tuple(rows),
        Change(sum(c[0] for c in costs_before.values()),
               sum(c[0] for c in costs_after.values())),
        Change(2 * sum(c[1] for c in costs_before.values()),
               2 * sum(c[1] for c in costs_after.values())))
