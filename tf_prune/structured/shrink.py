"""`shrink`: a model with channels physically removed; `zero_channels`: the
model it must compute the same as.

Both take `removed`, `{group or group id: channels}` (indices to remove, or a
boolean keep-vector), for the groups of `find_channel_groups(model)`.
`masked_channels` reads them from the masks of a model pruned with
`structure=channel`. `zero_channels` zeroes the removed channels' producer
filters and biases, BatchNormalization gammas and betas (betas and moving
means without a gamma) and depthwise slices in place: the masked model. `shrink` builds a new plain
Keras model, layer by layer from the original's configs with the new sizes
(`filters`, `units`, a Reshape's `target_shape`, a nested model's input
shapes), and slices every member weight: the same layer classes and names,
smaller kernels, biases, BatchNormalization vectors, depthwise kernels and
consumer input slices. In inference mode its outputs equal the zeroed
model's: the analysis only lets a channel go where the zeroed channel is
exactly 0 where it is read (the rule is in `groups.py`).
"""

import keras
import numpy as np

from tf_prune.keras import _internals
from tf_prune.keras import cloning
from tf_prune.keras.wrapper import PruneWrapper
from tf_prune.keras.wrapper import find_wrappers
from tf_prune.structured import groups as groups_lib


def zero_channels(model, removed):
    """Zeroes the removed channels of `model` in place (the masked model).

    Args:
      model: a Sequential or Functional Keras model.
      removed: `{group or group id: channel indices or keep-vector}` for the
        groups of `find_channel_groups(model)`.

    Raises:
      ValueError: see `find_channel_groups` and `removed_channels`.
    """
    found = groups_lib.find_channel_groups(model)
    for group_id, mask in groups_lib.removed_channels(found, removed).items():
        for member in found.groups[group_id].members:
            if member.role not in groups_lib.ZEROED_ROLES:
                continue
            value = np.array(member.variable)
            index = [slice(None)] * value.ndim
            index[member.axis] = member.removed(mask)
            value[tuple(index)] = 0
            member.variable.assign(value)


def masked_channels(model, found=None):
    """The channels the channel masks of a pruned model remove.

    Args:
      model: a model pruned with `structure=channel` (by `tf_prune.prune`).
      found: its `ChannelGroups`, if already found.

    Returns:
      `{group id: tuple of channel indices}`, the `removed` of `shrink`.

    Raises:
      ValueError: the model has no channel masks, weight masks, or masks
        that no longer match its channel groups.
    """
    found = found or groups_lib.find_channel_groups(model)
    wrappers = find_wrappers(model)
    weight_masks = [w.name for w in wrappers if w.channels is None]
    if weight_masks:
        raise ValueError(
            f'{", ".join(weight_masks)} mask weights, not channels: '
            f'tf_prune.strip_pruning(model) folds weight masks; shrink '
            f'removes the channels of a model pruned with structure=channel')
    owners = {id(w.layer): w.channel_state for w in wrappers
              if w.channel_state is not None}
    if not owners:
        raise ValueError(
            f'{model.name} has no channel masks; prune it with '
            f'structure=channel first, or pass the channels to remove')
    removed = {}
    for group in found.groups:
        state = owners.get(id(found.layers[group.name]))
        if state is None:
            continue
        mask = np.asarray(state.mask)
        if mask.shape != (len(group.removable),):
            raise ValueError(
                f'the channel mask of {group.name} has {mask.shape[0]} '
                f'entries but its group {len(group.removable)} removable '
                f'channels (was the model changed after tf_prune.prune?)')
        gone = np.asarray(group.removable)[mask == 0]
        if gone.size:
            removed[group.id] = tuple(gone.tolist())
    return removed


def shrink(model, removed=None):
    """A new, smaller model without the removed channels.

    Args:
      model: a Sequential or Functional Keras model (nested ones inside are
        shrunk too), plain or pruned with `structure=channel`; it is left
        as it was.
      removed: `{group or group id: channel indices or keep-vector}` for the
        groups of `find_channel_groups(model)`; None for the channels the
        model's channel masks remove (`masked_channels`).

    Returns:
      A plain Keras model (no wrapper, no mask) of the same layer classes
      and names whose outputs in inference mode equal those of `model`
      after `zero_channels(model, removed)`, or of the masked model.

    Raises:
      ValueError: see `find_channel_groups`, `masked_channels` and
        `removed_channels`.
    """
    found = groups_lib.find_channel_groups(model)
    if removed is None:
        removed = masked_channels(model, found)
    cloner = _Cloner(found, _Plan(found, groups_lib.removed_channels(
        found, removed)))
    shrunk = cloner.clone_model(model)
    cloner.set_weights()
    return shrunk


class _Cloner:
    """Clones layers with their new sizes, then gives them their weights."""

    def __init__(self, found, plan):
        self._found = found
        self._plan = plan
        self._paths = {id(layer): path for path, layer in found.layers.items()}
        self._clones = {}

    def clone(self, layer):
        """The smaller copy of `layer` (a `clone_model` clone function)."""
        if not isinstance(layer, keras.layers.Layer):
            return layer  # an op of the graph, such as `x + 3`
        if isinstance(layer, PruneWrapper):
            # The layer computes as its wrapper: every slice a channel mask
            # zeroes goes.
            layer = layer.layer
        if id(layer) not in self._clones:
            self._clones[id(layer)] = (
                self.clone_model(layer) if _internals.is_graph_model(layer)
                else self._clone_layer(layer))
        return self._clones[id(layer)]

    def _clone_layer(self, layer):
        config = layer.get_config()
        config.update(self._plan.config(self._paths.get(id(layer)), layer))
        return layer.__class__.from_config(config)

    def clone_model(self, model):
        """The smaller copy of a Sequential or Functional model."""
        # `clone_model(recursive=True)` would keep a nested model's input
        # shapes, which hold its input channels, and would name its inputs
        # after their tensors: give it smaller inputs, named as before.
        path = self._paths.get(id(model))
        return cloning.clone_graph_model(
            model, self.clone, batch_shapes=[
                self._plan.input_shape(path, index, tensor.shape)
                for index, tensor in enumerate(model.inputs)])

    def set_weights(self):
        """Gives every cloned layer the kept part of its original weights."""
        for path, layer in self._found.layers.items():
            if layer.weights and not _internals.is_graph_model(layer):
                self._clones[id(layer)].set_weights(
                    self._plan.values(path, layer))


class _Plan:
    """The kept positions of each member axis, by layer path."""

    def __init__(self, found, masks):
        # path -> {(weight, axis): [role, kept positions]}
        self._axes = {}
        for group_id, mask in masks.items():
            for member in found.groups[group_id].members:
                axes = self._axes.setdefault(member.layer, {})
                removed = member.removed(mask)
                entry = axes.setdefault((member.weight, member.axis),
                                        [member.role, ~removed])
                entry[1] = entry[1] & ~removed

    def config(self, path, layer):
        """The config entries of `layer` that change: its output size or its
        target shape."""
        changes = {}
        for (weight, axis), (role, kept) in self._axes.get(path, {}).items():
            if role == 'filter':
                key = 'units' if isinstance(layer, keras.layers.Dense) else (
                    'filters')
                changes[key] = int(kept.sum())
            elif weight == 'target_shape' and layer.target_shape[axis] != -1:
                shape = list(layer.target_shape)
                shape[axis] = int(kept.sum())
                changes['target_shape'] = tuple(shape)
        return changes

    def values(self, path, layer):
        """`layer`'s weight values with the removed positions left out."""
        kept_of = {}  # id(variable) -> [(axis, kept positions)]
        for (weight, axis), (role, kept) in self._axes.get(path, {}).items():
            if role != 'shape':
                kept_of.setdefault(id(getattr(layer, weight)), []).append(
                    (axis, kept))
        values = []
        for variable in layer.weights:
            value = np.asarray(variable)
            for axis, kept in kept_of.get(id(variable), ()):
                value = np.compress(kept, value, axis=axis)
            values.append(value)
        return values

    def input_shape(self, path, index, shape):
        """The batch shape of input `index` of the nested model at `path`."""
        entry = self._axes.get(path, {}).get((f'inputs[{index}]',
                                              len(shape) - 1))
        if entry is None:
            return tuple(shape)
        return tuple(shape[:-1]) + (int(entry[1].sum()),)
