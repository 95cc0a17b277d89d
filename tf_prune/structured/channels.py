"""`structure=channel`: channel masks on contrib's schedule.

`prune_channels` (what `tf_prune.prune` does with `structure=channel`) finds
the model's channel groups and wraps every layer holding a slice that
`zero_channels` would zero (`groups.ZEROED_ROLES`: producer kernels and
biases, BatchNormalization gammas and betas, depthwise kernels and biases) in
a `PruneWrapper` that masks those slices. The first producer of each group
keeps the group's state: a mask with one entry per removable channel and a
threshold.

`ChannelPruning` (what `tf_prune.Pruning` is with `structure=channel`)
updates them on contrib's schedule and gate: at each update it scores every
removable channel of a group (`criteria.py`), runs `update_mask` on that
vector with the group's target sparsity (the schedule, scaled by a
`weight_sparsity_map` pattern matching any of the group's masked weights),
and writes the group's mask into the masks of its member slices. A masked
channel is then exactly 0 wherever it is read, so the masked model computes
what `shrink` computes (see `groups.py`).
"""

import dataclasses
import functools

import absl.logging as logging
import keras
import numpy as np
import tensorflow as tf

from tf_prune.core import masking
from tf_prune.core import schedule
from tf_prune.keras import _internals
from tf_prune.keras import summaries
from tf_prune.keras.controller import Pruning
from tf_prune.keras.prune import wrap_layers
from tf_prune.keras.wrapper import PruneWrapper
from tf_prune.keras.wrapper import find_wrappers
from tf_prune.structured import cost as cost_lib
from tf_prune.structured import criteria
from tf_prune.structured import groups as groups_lib


def _graph_groups(model, what):
    """`find_channel_groups(model)`, refusing what is not a graph model."""
    if not _internals.is_graph_model(model):
        raise ValueError(
            f'{what} with structure=channel follows the graph of Sequential '
            f'and Functional models, and {model.name!r} is a '
            f'{type(model).__name__}; rebuild it as a Functional model, or '
            f'use structure=weight')
    return groups_lib.find_channel_groups(model)


def prune_channels(model, hparams, strict=False):
    """Wraps the layers of `model` that hold slices of removable channels.

    Args:
      model: a built Sequential or Functional model.
      hparams: validated `PruningHParams` with `structure=channel`.
      strict: unused: channel pruning leaves no layer dense because it does
        not know it (unprunable channels are logged instead).

    Returns:
      The pruned model (a copy around the same layers, as `tf_prune.prune`).

    Raises:
      ValueError: `model` is not a graph model, or has no removable channel.
    """
    del strict
    found = _graph_groups(model, 'tf_prune.prune')
    groups_lib.log_unprunable(found)
    plans = {}  # id(layer) -> the wrapper's channels
    for group in found.groups:
        if not group.removable:
            continue
        for member in group.members:
            if member.role not in groups_lib.ZEROED_ROLES:
                continue
            layer = found.layers[member.layer]
            plan = plans.setdefault(id(layer), {
                'weights': {}, 'group_size': 0,
                'taylor': hparams.channel_criterion == 'taylor',
                'bn_l1_penalty': 0.0})
            plan['weights'][member.weight] = member.axis
            if (member.weight == 'gamma'
                    and isinstance(layer, keras.layers.BatchNormalization)):
                plan['bn_l1_penalty'] = hparams.bn_l1_penalty
        owner = found.layers[group.name]
        plans[id(owner)]['group_size'] = len(group.removable)
    if not plans:
        raise ValueError(
            f'{model.name} has no channel that can be removed '
            f'({groups_lib.describe_unprunable(found)}); use structure=weight '
            f'to prune its weights')

    def wrap(layer):
        if id(layer) not in plans:
            return None
        return PruneWrapper(layer, channels=plans[id(layer)])

    pruned, _ = wrap_layers(model, wrap)
    ChannelPlan(pruned, hparams)  # the weight_sparsity_map errors, now
    return pruned


@dataclasses.dataclass(frozen=True)
class GroupPlan:
    """What a mask update computes for one channel group.

    Attributes:
      group: the `ChannelGroup`.
      state: its `ChannelState` (mask and threshold).
      removable: the group's removable channels (mask entry i is channel
        `removable[i]`).
      masked: `(PrunedWeight, index)` of each masked member: index[p] is the
        mask entry of position p along its channel axis, or -1.
      weight_plan: the `schedule.WeightPlan` (target scale and update_mask
        arguments).
      keep_one: mask entries of each producer that could otherwise lose all
        its filters.
    """
    group: groups_lib.ChannelGroup
    state: object
    removable: tuple
    masked: tuple
    weight_plan: schedule.WeightPlan
    keep_one: tuple

    def index(self, member):
        """Member positions as mask entries (-1: not a removable channel)."""
        entry = np.full(self.group.size, -1)
        entry[list(self.removable)] = np.arange(len(self.removable))
        channels = np.asarray(member.channels)
        return np.where(channels >= 0, entry[np.maximum(channels, 0)], -1)

    def update(self, scores, sparsity, threshold=0.0):
        """`update_mask` on the channel scores, every producer keeping a
        filter.

        Args:
          scores: float32 vector, one score per removable channel.
          sparsity: the group's target, a float32 scalar.
          threshold: the previous threshold.

        Returns:
          `(threshold, mask)`: float32 scalar and 0/1 vector.
        """
        threshold, mask = masking.update_mask(
            scores, sparsity, threshold, **self.weight_plan.mask_arguments)
        return threshold, _keep_one(mask, scores, self.keep_one)

    def slice_keeps(self, mask):
        """`(PrunedWeight, 0/1 keep vector along its channel axis)` of each
        masked slice, for the group mask `mask`."""
        extended = tf.concat([mask, tf.ones([1], mask.dtype)], 0)
        for p, index in self.masked:
            yield p, tf.gather(extended, np.where(index >= 0, index,
                                                  len(self.removable)))


class ChannelPlan:
    """The groups of a channel-pruned model, resolved against its wrappers.

    Args:
      model: a model returned by `prune_channels` (or loaded from one).
      hparams: its `PruningHParams`.

    Raises:
      ValueError: the model is not a graph model, has weight masks, or its
        channel groups no longer match its masks; a group's masked weights
        match `weight_sparsity_map` patterns of different targets.
    """

    def __init__(self, model, hparams):
        self.found = _graph_groups(model, 'Pruning')
        wrappers = {id(w.layer): w for w in find_wrappers(model)}
        weight_masks = [w.name for w in wrappers.values() if w.channels is None]
        if weight_masks:
            raise ValueError(
                f'{", ".join(weight_masks)} mask weights (the model was '
                f'pruned with structure=weight); give Pruning the hparams '
                f'it was pruned with')
        pruned = {(id(w.layer), p.name[len(w.name) + 1:]): p
                  for w in wrappers.values() for p in w.pruned_weights}
        self.groups = []
        for group in self.found.groups:
            if group.removable:
                self.groups.append(self._plan_group(
                    group, hparams, wrappers, pruned))
        self.costs = cost_lib.weight_costs(self.found)
        # Resolved once, so that an update gathers each masked slice's keep
        # vector in one op, not one per group.
        self._slice_entries = _slice_entries(self.groups)

    def _plan_group(self, group, hparams, wrappers, pruned):
        owner = wrappers.get(id(self.found.layers[group.name]))
        state = owner.channel_state if owner is not None else None
        if state is None or state.mask.shape[0] != len(group.removable):
            raise ValueError(
                f'the channel group of {group.name} has '
                f'{len(group.removable)} removable channels, but the model '
                f'holds no channel mask of that size for it (was it changed '
                f'after tf_prune.prune?); prune the model again')
        plan = GroupPlan(group, state, group.removable, (), None, ())
        masked = []
        for member in group.members:
            if member.role in groups_lib.ZEROED_ROLES:
                key = (id(self.found.layers[member.layer]), member.weight)
                masked.append((pruned[key], plan.index(member)))
        return dataclasses.replace(
            plan, masked=tuple(masked),
            weight_plan=_group_weight_plan(hparams, group, masked),
            keep_one=_keep_one_entries(plan))

    @functools.cached_property
    def _axis_entries(self):
        """`{(path, weight, axis): entry index}` of each member axis that
        is not a size; only costs read it."""
        return _entry_indices(self.groups, lambda plan: (
            ((m.layer, m.weight, m.axis), plan.index(m))
            for m in plan.group.members if m.role != 'shape'))

    def kept_sizes(self, masks):
        """`{(path, weight, axis): kept positions}` of every member axis,
        as float32 tensors, for group masks `masks` (one per plan)."""
        entries = _entries(masks)
        return {key: tf.reduce_sum(tf.gather(entries, index))
                for key, index in self._axis_entries.items()}

    def slice_keeps(self, masks):
        """`(PrunedWeight, 0/1 keep vector along its channel axis)` of each
        masked weight, for group masks `masks` (one per plan)."""
        entries = _entries(masks)
        for p, index in self._slice_entries:
            yield p, tf.gather(entries, index)

    def cost_fractions(self, masks):
        """`(parameter fraction, MAC fraction)` the masks keep, float32."""
        parameters, macs, all_parameters, all_macs = self._costs(masks)
        return (tf.cast(parameters, tf.float32) / max(all_parameters, 1),
                tf.cast(macs, tf.float32) / max(all_macs, 1))

    def removed_cost(self, masks):
        """`(parameters, MACs)` the masks remove, as floats."""
        parameters, macs, all_parameters, all_macs = self._costs(masks)
        return (all_parameters - float(parameters), all_macs - float(macs))

    def _costs(self, masks):
        """Kept parameters and MACs (tensors), and the model's (ints)."""
        kept = {}  # (path, weight) -> {axis: kept positions}
        for (path, weight, axis), size in self.kept_sizes(masks).items():
            kept.setdefault((path, weight), {})[axis] = size
        parameters = macs = 0.0
        all_parameters = all_macs = 0
        for weight_cost in self.costs:
            count = weight_cost.count(
                kept.get((weight_cost.path, weight_cost.weight)))
            parameters, macs = parameters + count[0], macs + count[1]
            full = weight_cost.count()
            all_parameters += full[0]
            all_macs += full[1]
        return parameters, macs, all_parameters, all_macs


def _entries(masks):
    """The group masks end to end, then a 1 (the entry of the positions
    no group's mask reaches)."""
    return tf.concat([*masks, tf.ones([1], tf.float32)], 0)


def _entry_indices(plans, members):
    """`{key: entry index}`: for each position along each member axis, its
    entry in `_entries` (the final 1 where no group's mask reaches).

    `members(plan)` yields `(key, index)` of members of `plan`'s group,
    `index` their positions' mask entries within the group (-1: none). A
    position is one channel of one group at most (its element's set), so
    one gather gives what the product of the groups' keep vectors would.
    """
    offsets = np.cumsum([0] + [len(plan.removable) for plan in plans])
    found = {}
    for plan, offset in zip(plans, offsets.tolist()):
        for key, index in members(plan):
            entries = found.setdefault(key, np.full(len(index), offsets[-1]))
            entries[index >= 0] = index[index >= 0] + offset
    return found


def _slice_entries(plans):
    """`(PrunedWeight, entry index)` of each masked weight."""
    pruned = {id(p): p for plan in plans for p, _ in plan.masked}
    found = _entry_indices(plans, lambda plan: (
        (id(p), index) for p, index in plan.masked))
    return tuple((pruned[key], index) for key, index in found.items())


def _group_weight_plan(hparams, group, masked):
    """The group's `WeightPlan`: `weight_sparsity_map` may name any of its
    masked weights, but all it matches must agree."""
    names = [p.name for p, _ in masked]
    plans = [schedule.plan_weight(hparams, name) for name in names]
    scales = {(plan.scale, name) for plan, name in zip(plans, names)
              if plan.scale is not None}
    if len({scale for scale, _ in scales}) > 1:
        raise ValueError(
            f'weight_sparsity_map gives the channel group of {group.name} '
            f'different targets through {", ".join(sorted(n for _, n in scales))}'
            f'; its channels go together, so match one of them, or give '
            f'them one target')
    scale = next(iter(scales))[0] if scales else None
    arguments = dict(plans[0].mask_arguments, name=f'{group.name} channels')
    return schedule.WeightPlan(scale=scale, mask_arguments=arguments)


def _keep_one_entries(plan):
    """Mask entries of each producer that makes only removable channels and
    not all of the group's: `update_mask` keeps at least one channel of the
    group, not of each such producer."""
    entries = []
    for producer in plan.group.producers:
        index = plan.index(producer)
        own = np.unique(index)
        if (index >= 0).all() and len(own) < len(plan.removable):
            entries.append(own)
    return tuple(entries)


def _keep_one(mask, scores, entries):
    """`mask` with the best entry of each of `entries` kept when it would
    keep none of them."""
    for own in entries:
        best = tf.gather(own, tf.argmax(tf.gather(scores, own)))
        rescued = tf.tensor_scatter_nd_update(mask, [[best]], [1.0])
        mask = tf.where(tf.reduce_sum(tf.gather(mask, own)) > 0, mask,
                        rescued)
    return mask


def slice_mask(pruned, keep):
    """The full mask of a channel-masked weight from its keep vector."""
    shape = pruned.mask.shape
    view = [1] * len(shape)
    view[pruned.channel_axis] = -1
    return tf.cast(tf.broadcast_to(tf.reshape(keep, view), shape),
                   pruned.mask.dtype)


class ChannelPruning(Pruning):
    """`Pruning` with `structure=channel`: masks whole channels.

    `tf_prune.Pruning(hparams, model)` returns one when the hparams say
    `structure=channel`; the model comes from `tf_prune.prune` with the same
    hparams. Every method of `Pruning` works as documented there, with these
    differences: `get_masks()` and `get_weights()` list the masked weight
    slices' masks and weights; `get_thresholds()` the groups' thresholds;
    `model_sparsity` is the fraction of removable channels masked; and the
    summaries add, per group, the fraction of its channels kept, and the
    model's fractions of parameters and FLOPs kept.
    """

    # Tracing and optimizing the compiled update of DenseNet121's 120 groups
    # (over eleven thousand ops) costs some 15 s of CPU, running its ops
    # once under 2 s; score vectors stay below masking's fused-kernel size,
    # so no kernel is traced per shape.
    _update_once_op_by_op = True

    def _plan_updates(self):
        self._channels = ChannelPlan(self._model, self._hparams)
        if self._hparams.channel_criterion == 'taylor' and any(
                p.taylor is None for w in self._wrappers
                for p in w.pruned_weights):
            raise ValueError(
                'channel_criterion=taylor needs the gradient sums its '
                'wrappers keep, and this model was pruned with another '
                'criterion; prune it with channel_criterion=taylor')
        self._groups = [[p] for w in self._wrappers for p in w.pruned_weights]
        self._plans = []
        self._scored = []
        for plan in self._channels.groups:
            if criteria.can_score(self._hparams.channel_criterion, plan):
                self._scored.append(plan)
        left = [plan.group.name for plan in self._channels.groups
                if plan not in self._scored]
        if left:
            logging.warning(
                'channel_criterion=%s cannot score the channel groups of %s '
                '(no BatchNormalization scale); they stay whole',
                self._hparams.channel_criterion, ', '.join(left))

    @property
    def channel_plan(self):
        """The `ChannelPlan`: the model's channel groups and their masks."""
        return self._channels

    def get_thresholds(self):
        """The threshold variables, one per channel group."""
        return [plan.state.threshold for plan in self._channels.groups]

    def get_channel_masks(self):
        """The channel mask variables, one per channel group."""
        return [plan.state.mask for plan in self._channels.groups]

    def channel_scores(self, plan):
        """The scores `plan`'s group is ranked by: `channel_criterion`'s.

        A subclass may rank otherwise (a benchmark's random baseline).

        Args:
          plan: a `GroupPlan` of `channel_plan.groups`.

        Returns:
          A float32 vector, one non-negative score per removable channel.
        """
        return criteria.score(self._hparams.channel_criterion, plan)

    def _group_masks(self):
        return [plan.state.mask.value for plan in self._channels.groups]

    def _zero_fraction(self):
        masks = self._group_masks()
        kept = tf.add_n([tf.reduce_sum(mask) for mask in masks])
        total = sum(mask.shape[0] for mask in masks)
        return 1.0 - kept / float(max(total, 1))

    def _update_masks(self, step):
        sparsity = self.global_sparsity(step)
        updates = []
        for plan in self._scored:
            threshold, mask = plan.update(
                self.channel_scores(plan),
                plan.weight_plan.sparsity(sparsity),
                plan.state.threshold.value)
            updates.append((plan, threshold, mask))
        new_masks = {id(plan): mask for plan, _, mask in updates}
        masks = [new_masks.get(id(plan), plan.state.mask.value)
                 for plan in self._channels.groups]
        # As in `Pruning`: nothing is assigned when a check fails.
        with tf.control_dependencies([mask for _, _, mask in updates]):
            for plan, threshold, mask in updates:
                plan.state.threshold.assign(threshold)
                plan.state.mask.assign(mask)
            self._assign_slice_masks(masks)
            step = tf.cast(step, tf.int32)
            for wrapper in self._wrappers:
                wrapper.last_mask_update_step.assign(step)
                for p in wrapper.pruned_weights:
                    if p.taylor is not None:
                        p.taylor.assign(tf.zeros_like(p.taylor))
        self._model_sparsity.assign(self._zero_fraction())
        return sparsity

    def _assign_slice_masks(self, masks):
        """Writes the group masks into the masks of the slices they cover."""
        for p, keep in self._channels.slice_keeps(masks):
            p.mask.assign(slice_mask(p, keep))

    def _write_summaries(self, step, sparsity, histograms):
        masks = self._group_masks()
        parameters, macs = self._channels.cost_fractions(masks)
        kept = [(plan.group.name,
                 (tf.reduce_sum(mask) + len(plan.group.fixed))
                 / plan.group.size, plan.state)
                for plan, mask in zip(self._channels.groups, masks)]
        summaries.write_channel_summaries(
            self._hparams, step, sparsity, self._zero_fraction(),
            self.last_mask_update_step.value, kept, parameters, macs,
            self._pruned() if histograms else ())
