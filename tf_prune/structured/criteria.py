"""Channel scores: how `channel_criterion` ranks a group's channels.

A group's channel is made by one or more producers (coupled convolutions of
a residual stream); its score sums the criterion over the group's members:

- `l1`: the L1 norm of each producer filter (the kernel slice along the
  output axis; biases left out), Li et al. 2017;
- `l2`: the L2 norm of each producer filter, as soft filter pruning (He et
  al. 2018) ranks;
- `bn_scale`: |gamma| of each BatchNormalization in the group, as network
  slimming (Liu et al. 2017) ranks; a group with no BatchNormalization
  scale cannot be ranked this way and stays whole (logged);
- `taylor`: the first-order Taylor estimate of the loss change when the
  channel goes (Molchanov et al.), accumulated while training since the last
  mask update: for each masked slice (kernel, bias, gamma, beta, ...) the
  square of its sum of gradient times weight, per training step, summed.
  Before any training step every score is 0 and the ties keep every
  channel.

Each function returns a float32 vector with one score per removable channel
of the group (a `channels.GroupPlan`), the order of its mask.
"""

import numpy as np
import tensorflow as tf


def _sum_into_channels(values, index, size):
    """Sums `values` (per member position) into `size` mask entries;
    positions with index -1 are dropped."""
    segments = np.where(index >= 0, index, size)
    return tf.math.unsorted_segment_sum(
        tf.cast(values, tf.float32), segments, size + 1)[:size]


def _filter_norms(plan, norm):
    size = len(plan.removable)
    total = tf.zeros([size], tf.float32)
    for member in plan.group.producers:
        weight = tf.convert_to_tensor(member.variable)
        axes = [a for a in range(len(weight.shape)) if a != member.axis]
        total += _sum_into_channels(norm(tf.cast(weight, tf.float32), axes),
                                    plan.index(member), size)
    return total


def _l1(plan):
    return _filter_norms(
        plan, lambda weight, axes: tf.reduce_sum(tf.abs(weight), axes))


def _l2(plan):
    return _filter_norms(
        plan, lambda weight, axes: tf.sqrt(tf.reduce_sum(weight * weight,
                                                         axes)))


def _scales(plan):
    return [m for m in plan.group.members
            if m.weight == 'gamma' and m.role == 'norm']


def _bn_scale(plan):
    size = len(plan.removable)
    total = tf.zeros([size], tf.float32)
    for member in _scales(plan):
        total += _sum_into_channels(tf.abs(tf.convert_to_tensor(
            member.variable)), plan.index(member), size)
    return total


def _taylor(plan):
    size = len(plan.removable)
    total = tf.zeros([size], tf.float32)
    for pruned, index in plan.masked:
        total += _sum_into_channels(pruned.taylor.value, index, size)
    return total


_CRITERIA = {'l1': _l1, 'l2': _l2, 'bn_scale': _bn_scale, 'taylor': _taylor}


def can_score(criterion, plan):
    """Whether `criterion` ranks the channels of `plan`'s group."""
    return criterion != 'bn_scale' or bool(_scales(plan))


def score(criterion, plan):
    """The scores of `plan`'s removable channels under `criterion`."""
    return _CRITERIA[criterion](plan)
