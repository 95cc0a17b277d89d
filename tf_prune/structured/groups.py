"""Channel groups: the output channels of a model that go together.

`find_channel_groups(model)` analyses a Sequential or Functional model (nested
ones too) the way Torch-Pruning's dependency graph does, by following each
channel from the layer that makes it to every layer that reads it
(`graph.py` has the rules per layer kind), and returns a `ChannelGroups`.

The data structure
------------------
A `ChannelGroup` is a set of channels that must be removed together, numbered
`0 .. size - 1`: channel `c` of a plain convolution's group is its output
channel `c`; a residual stream's group couples channel `c` of every
convolution whose output is added into it. A group lists its `members`, one
per weight axis (or config size) whose positions belong to its channels:

- `Member.layer`, `.weight`, `.axis`: which axis (`'conv/kernel'`, axis 3);
- `Member.channels`: for each position along that axis, the group channel it
  belongs to, or -1 for a position of another group. This is the index
  mapping: a Dense layer after Flatten has `channels[p] = c` for every row
  `p = s * C + c`; a convolution after a Concatenate maps only its rows of
  this input, from the input's offset on, and is a member of each input's
  group;
- `Member.role`: what the positions are (see `graph.Axis`): `'filter'`
  (a producer's output slice; the group's `producers` are these members,
  and their filters score the group), `'bias'`, `'norm'` (BatchNormalization
  gamma and beta, or beta and moving mean when it has no gamma), `'stat'`
  (its other moving statistics), `'depthwise'`
  (a depthwise kernel slice or bias, which follow the channel), `'input'`
  (a consumer's input slice), `'alpha'` (PReLU's) or `'shape'` (a size:
  a Reshape's target shape, or a nested model's input shape).

`ChannelGroup.fixed` lists the channels that cannot be removed, and
`ChannelGroups.unprunable` says why (`describe_unprunable` makes one line of
it). Only groups with a producer are listed.

When removal is exact
---------------------
The reference a shrunk model must match is the *zeroed* model:
`zero_channels` zeroes, for each removed channel, the slices of the members
with a role in `ZEROED_ROLES` (producer kernel output slice and bias,
BatchNormalization gamma and beta, or beta and moving mean when it has no
scale, depthwise kernel slice and bias). Removing the channel (all member
slices) is exact when the channel is then exactly 0 wherever a layer that
mixes channels (Conv, Dense, SeparableConv, ...) reads it, since those reads
are the only slices `shrink` drops that still compute. The rule that decides
it, along each path from where the channel is made to where it is read:

- a zeroed producer's output is its activation at 0: 0 for relu, relu6,
  leaky_relu, elu, selu, gelu, silu/swish, tanh, hard_silu/hard_swish,
  linear, ...; not for sigmoid, softplus, exponential, hard_sigmoid;
- BatchNormalization with a scale, and DepthwiseConv, output 0 whatever they
  read (their zeroed gamma and beta, or kernel slice and bias); this makes a
  path exact again after, say, a sigmoid. BatchNormalization without a scale
  (`scale=False`, as in InceptionV3) outputs 0 where it reads 0, once its
  beta and moving mean are zeroed;
- activations (layers, and `x + 3`-style ops) keep 0 only if they map 0 to 0;
  pooling, padding, cropping, upsampling, Dropout, Flatten, Reshape and
  Concatenate keep 0;
- Add, Subtract, Average, Maximum and Minimum output 0 when all their inputs
  are 0; Multiply when any is (squeeze-excitation: the gate is
  sigmoid(0) = 0.5, but the gated channel is 0).

A channel that is not 0 where it is read is fixed, as are the channels of
model inputs and outputs and those any unfollowed layer reads or makes. Each
step is monotone (zeroing more channels never makes one nonzero), so channels
found removable one by one are removable together. In inference mode
BatchNormalization uses its moving statistics, which do not matter once gamma
and beta are 0, so the rule holds exactly; in training mode too (the batch
statistics of a zero channel are 0), except for the moving statistics the
step updates.
"""

import dataclasses
import math
import types

import absl.logging as logging
import numpy as np

from tf_prune.keras import _internals
from tf_prune.structured import graph

# Roles whose slices `zero_channels` zeroes: zeroing them makes a removed
# channel 0 (see the module docstring).
ZEROED_ROLES = frozenset(('filter', 'bias', 'norm', 'depthwise'))


@dataclasses.dataclass(frozen=True)
class Member:
    """A weight axis, or a config size, whose positions are a group's channels.

    Attributes:
      layer: the layer's name, after the names of the models it is nested in
        (`'block/conv'`).
      weight: the weight's attribute name (`'kernel'`, `'gamma'`, ...);
        for a size, `'target_shape'` (a Reshape's) or `'inputs[i]'` (a
        nested model's i-th input shape, with its batch axis).
      axis: the axis of the weight (or of the shape).
      channels: for each position along `axis`, the group channel it belongs
        to, or -1 if it belongs to another group.
      role: see the module docstring.
      variable: the weight itself, None for a size (not compared).
    """
    layer: str
    weight: str
    axis: int
    channels: tuple
    role: str
    variable: object = dataclasses.field(
        default=None, compare=False, repr=False)

    def removed(self, mask):
        """Whether each position along `axis` goes when the group's channels
        where `mask` is True do (a boolean numpy vector)."""
        channels = np.asarray(self.channels)
        return (channels >= 0) & mask[np.maximum(channels, 0)]


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
    """Channels that are removed together.

    Attributes:
      id: the group's index in `ChannelGroups.groups`.
      size: the number of channels.
      members: the `Member`s, in the order the graph runs.
      fixed: the channels that cannot be removed, ascending.
    """
    id: int
    size: int
    members: tuple
    fixed: tuple

    @property
    def producers(self):
        """The members whose filters make (and score) the channels."""
        return tuple(m for m in self.members if m.role == 'filter')

    @property
    def removable(self):
        """The channels that can be removed, ascending."""
        fixed = set(self.fixed)
        return tuple(c for c in range(self.size) if c not in fixed)

    @property
    def name(self):
        """The first producer's layer, to name the group in messages."""
        return self.producers[0].layer


@dataclasses.dataclass(frozen=True)
class Unprunable:
    """Channels of a group that cannot be removed, and why."""
    group: int
    channels: tuple
    reason: str


@dataclasses.dataclass(frozen=True)
class ChannelGroups:
    """The channel groups of a model.

    Attributes:
      groups: the `ChannelGroup`s, numbered in the order their first
        producer runs.
      unprunable: the `Unprunable` channels, by group.
      layers: `{layer path: layer}` for every layer the graph calls, nested
        models and their layers too (not compared); a wrapped layer, not
        its `PruneWrapper`.
      shapes: `{layer path: (input shape, output shape)}` of the first call
        of each layer with one input and one output (not compared).
    """
    groups: tuple
    unprunable: tuple
    layers: types.MappingProxyType = dataclasses.field(
        compare=False, repr=False)
    shapes: types.MappingProxyType = dataclasses.field(
        compare=False, repr=False)


def find_channel_groups(model):
    """The channel groups of a Sequential or Functional model.

    Args:
      model: a built Sequential or Functional Keras model; nested Sequential
        and Functional models are followed into.

    Returns:
      A `ChannelGroups`.

    Raises:
      ValueError: `model` is not a Sequential or Functional model.
    """
    if not _internals.is_graph_model(model):
        raise ValueError(
            f'find_channel_groups follows the graph of Sequential and '
            f'Functional models only, and {model.name!r} is a subclassed '
            f'{type(model).__name__}; rebuild it as a Functional model')
    return _groups(graph.trace(model))


def _space_roots(found):
    """For each space, a representative of the spaces joined to it."""
    sizes = [space.size for space in found.spaces]
    space_of = np.repeat(np.arange(len(sizes)), sizes)
    parent = list(range(len(sizes)))

    def find(space):
        while parent[space] != space:
            parent[space] = parent[parent[space]]
            space = parent[space]
        return space

    for a, b in set(zip(space_of.tolist(), space_of[found.roots].tolist())):
        a, b = find(a), find(b)
        parent[max(a, b)] = min(a, b)
    return space_of, np.array([find(s) for s in range(len(sizes))])


def _number_channels(found):
    """The group and the channel of each element set (by its root).

    Groups are numbered by their first producer, channels by their first
    element; sets in no group (such as a model input's) get -1.
    """
    space_of, space_root = _space_roots(found)
    group_of_space = {}
    for index, space in enumerate(found.spaces):
        if space.kind == 'producer':
            group_of_space.setdefault(space_root[index], len(group_of_space))
    size = len(found.roots)
    group = np.full(size, -1)
    channel = np.full(size, -1)
    counts = [0] * len(group_of_space)
    for element, root in enumerate(found.roots.tolist()):
        if group[root] >= 0:
            continue
        g = group_of_space.get(space_root[space_of[element]], -1)
        if g >= 0:
            group[root], channel[root] = g, counts[g]
            counts[g] += 1
    return group, channel, counts


def _groups(found):
    """The `ChannelGroups` of a `graph.Trace`."""
    group, channel, counts = _number_channels(found)
    members = [[] for _ in counts]
    for axis in found.axes:
        roots = found.roots[axis.elements]
        groups_here = group[roots]
        for g in np.unique(groups_here[groups_here >= 0]).tolist():
            channels = np.where(groups_here == g, channel[roots], -1)
            members[g].append(Member(axis.path, axis.weight, axis.axis,
                                     tuple(channels.tolist()), axis.role,
                                     axis.variable))
    reasons = {}  # (group, reason) -> channels; a set keeps its first reason
    seen = set()
    for elements, reason in found.fixes:
        for root in np.unique(found.roots[elements]).tolist():
            if root not in seen and group[root] >= 0:
                seen.add(root)
                reasons.setdefault((int(group[root]), reason), []).append(
                    int(channel[root]))
    fixed = [set() for _ in counts]
    for (g, _), channels in reasons.items():
        fixed[g].update(channels)
    groups = tuple(
        ChannelGroup(g, counts[g], tuple(members[g]), tuple(sorted(fixed[g])))
        for g in range(len(counts)))
    unprunable = tuple(
        Unprunable(g, tuple(sorted(channels)), reason)
        for (g, reason), channels in sorted(
            reasons.items(), key=lambda item: (item[0][0], min(item[1]))))
    return ChannelGroups(groups, unprunable,
                         types.MappingProxyType(found.layers),
                         types.MappingProxyType(found.shapes))


def describe_unprunable(groups):
    """One line saying which channels cannot be removed, and why.

    Args:
      groups: a `ChannelGroups`.

    Returns:
      A string such as `"2 of 5 channel groups have unprunable channels:
      group 0 (conv1) 3/3: model input 'image'; ..."`.
    """
    parts = []
    for item in groups.unprunable:
        group = groups.groups[item.group]
        parts.append(f'group {group.id} ({group.name}) '
                     f'{len(item.channels)}/{group.size}: {item.reason}')
    touched = len({item.group for item in groups.unprunable})
    line = (f'{touched} of {len(groups.groups)} channel groups have '
            f'unprunable channels')
    return f'{line}: ' + '; '.join(parts) if parts else line


def log_unprunable(groups):
    """Logs `describe_unprunable(groups)` as one line."""
    logging.info('%s', describe_unprunable(groups))


def removed_channels(groups, removed):
    """`{group id: boolean vector of removed channels}` for `removed`.

    Args:
      groups: the model's `ChannelGroups`.
      removed: `{group or group id: channels}`, where channels are the
        indices to remove or a boolean keep-vector of the group's size.

    Returns:
      A dict from group id to a boolean numpy vector, True where a channel
      is removed; groups with nothing removed are left out.

    Raises:
      ValueError: an unknown group, an index out of range, a keep-vector of
        the wrong size, a fixed channel, or every channel of a layer.
    """
    result = {}
    for key, channels in removed.items():
        group = _lookup(groups, key)
        values = np.asarray(channels)
        if values.dtype == bool:
            if values.shape != (group.size,):
                raise ValueError(
                    f'keep-vector for group {group.id} ({group.name}) has '
                    f'shape {values.shape}; give one of {group.size} bools')
            mask = ~values
        else:
            mask = np.zeros(group.size, bool)
            indices = values.astype(int).ravel()
            if indices.size and not (
                    0 <= indices.min() and indices.max() < group.size):
                raise ValueError(
                    f'channels {sorted(set(indices.tolist()))} of group '
                    f'{group.id} ({group.name}) are out of range; it has '
                    f'{group.size}')
            mask[indices] = True
        _check_fixed(groups, group, mask)
        if mask.any():
            result[group.id] = mask
    _check_layers_keep_channels(groups, result)
    return result


def _lookup(groups, key):
    """The group of `groups` that `key` (a group or a group id) names."""
    if isinstance(key, ChannelGroup):
        if (key.id >= len(groups.groups) or groups.groups[key.id] != key):
            raise ValueError(
                f'group {key.id} ({key.name}) is not a group of this model; '
                f'pass groups from find_channel_groups(model)')
        return key
    if not 0 <= int(key) < len(groups.groups):
        raise ValueError(f'group id {key} is out of range; the model has '
                         f'{len(groups.groups)} groups')
    return groups.groups[int(key)]


def _check_fixed(groups, group, mask):
    """Refuses a removal of fixed channels, naming why they are fixed."""
    fixed = sorted(set(np.flatnonzero(mask).tolist()) & set(group.fixed))
    if fixed:
        reason = next(item.reason for item in groups.unprunable
                      if item.group == group.id
                      and fixed[0] in item.channels)
        raise ValueError(
            f'channels {fixed} of group {group.id} ({group.name}) cannot be '
            f'removed ({reason}); leave them out')


def _check_layers_keep_channels(groups, masks):
    """Refuses a removal that leaves a weight axis with no position (a layer
    with no filter): Keras layers cannot be built that way."""
    gone = {}  # (layer, weight, axis) -> removed positions
    for group_id, mask in masks.items():
        for member in groups.groups[group_id].members:
            key = (member.layer, member.weight, member.axis)
            gone[key] = gone.get(key, False) | member.removed(mask)
    for (layer, weight, axis), removed in gone.items():
        if removed.all():
            raise ValueError(
                f"removing every channel of '{layer}' ({weight}, axis "
                f"{axis}); keep at least one of its channels")


def l1_scores(group):
    """The L1 score of each channel of `group`.

    A channel's score is the sum, over the group's producers, of the L1 norm
    of each output filter of the channel (the kernel slice along the output
    axis; biases are left out), as in Li et al. 2017 (arXiv 1608.08710)
    summed over coupled layers.

    Args:
      group: a `ChannelGroup`.

    Returns:
      A float numpy vector of `group.size` scores.
    """
    scores = np.zeros(group.size)
    for member in group.producers:
        values = np.abs(np.asarray(member.variable))
        other_axes = tuple(a for a in range(values.ndim) if a != member.axis)
        norms = values.sum(axis=other_axes)
        channels = np.asarray(member.channels)
        inside = channels >= 0
        np.add.at(scores, channels[inside], norms[inside])
    return scores


def keep_top(groups, fraction_removed, scores=l1_scores):
    """The lowest-scoring channels of each group, to remove.

    Args:
      groups: a `ChannelGroups` or an iterable of `ChannelGroup`s.
      fraction_removed: the fraction of each group's channels to remove,
        in [0, 1]; rounded down. Fixed channels are never removed, and every
        producer keeps at least one filter.
      scores: a function from a group to a vector of channel scores.

    Returns:
      `{group id: tuple of channel indices}` for groups that lose channels,
      the input of `shrink` and `zero_channels`.

    Raises:
      ValueError: `fraction_removed` is outside [0, 1].
    """
    if not 0 <= fraction_removed <= 1:
        raise ValueError(f'fraction_removed={fraction_removed} is outside '
                         f'[0, 1]; give a fraction such as 0.5')
    if isinstance(groups, ChannelGroups):
        groups = groups.groups
    removed = {}
    for group in groups:
        # The small epsilon keeps 0.29 * 100 at 29, not 28.
        count = math.floor(fraction_removed * group.size + 1e-9)
        chosen = _lowest(group, scores(group), count)
        if chosen:
            removed[group.id] = chosen
    return removed


def _lowest(group, scores, count):
    """Up to `count` removable channels of `group`, lowest scores first,
    leaving each producer at least one filter."""
    # A group may couple producers that make different channels (a
    # Concatenate gated by one Multiply): each keeps one.
    hits = [np.bincount([c for c in m.channels if c >= 0],
                        minlength=group.size) for m in group.producers]
    left = [int(h.sum()) for h in hits]
    candidates = np.array(group.removable, dtype=int)
    chosen = []
    for channel in candidates[np.argsort(scores[candidates], kind='stable')]:
        if len(chosen) == count:
            break
        after = [n - int(h[channel]) for n, h in zip(left, hits)]
        if min(after) > 0:
            chosen.append(int(channel))
            left = after
    return tuple(sorted(chosen))
