"""contrib's pruning module for TF1 graphs: `apply_mask` and `Pruning`.

The API of `tensorflow.contrib.model_pruning.python.pruning` (TF 1.15) on
TF 2's graph mode:

    weights = tf.compat.v1.get_variable('weights', [784, 300])
    masked = pruning.apply_mask(weights)      # adds `mask` and `threshold`
    p = pruning.Pruning(pruning.get_pruning_hparams().parse(FLAGS.spec))
    mask_update_op = p.conditional_mask_update_op()
    p.add_pruning_summaries()

The schedule, gate and mask update are `tf_prune.core`'s, so the masks and
thresholds are contrib's, bit for bit. Unlike contrib: k = 0 keeps one
weight instead of crashing, a -1 block dim is resolved per weight, and
partitioned masks have summaries.
"""

import json

import tensorflow as tf
from absl import logging

from tf_prune.compat.v1 import pruning_utils
from tf_prune.compat.v1.layers import core_layers
from tf_prune.core import hparams as hparams_lib
from tf_prune.core import masking
from tf_prune.core import schedule

v1 = tf.compat.v1

_MASK_COLLECTION = core_layers.MASK_COLLECTION
_THRESHOLD_COLLECTION = core_layers.THRESHOLD_COLLECTION
_MASKED_WEIGHT_COLLECTION = core_layers.MASKED_WEIGHT_COLLECTION
_WEIGHT_COLLECTION = core_layers.WEIGHT_COLLECTION

get_pruning_hparams = hparams_lib.get_pruning_hparams


def _check_prune_option(prune_option):
    if prune_option != 'weight':
        hparams_lib.check_choice('prune_option', prune_option,
                                 hparams_lib.PRUNE_OPTIONS)
        raise ValueError(
            f"prune_option={prune_option!r} is not available in "
            f"tf_prune.compat.v1, which ranks weights by |w| as contrib did "
            f"(prune_option='weight'); the gradient options are in the Keras "
            f"API (tf_prune.prune)")


def apply_mask(x, scope='', prune_option='weight'):
    """Masks a weight: creates its `mask` and `threshold`, returns mask * x.

    The product is the op `<name scope>/weights/masked_weight`, which
    `strip_pruning_vars` folds into a constant. The mask, threshold,
    masked weight and weight join the `masks`, `thresholds`,
    `masked_weights` and `kernel` collections once per mask.

    Args:
      x: the weight variable (a `PartitionedVariable` too).
      scope: the variable scope (or its name) for `mask` and `threshold`;
        the current scope when empty.
      prune_option: 'weight' (contrib's |w| ranking).

    Returns:
      The masked weight tensor.

    Raises:
      ValueError: prune_option is not 'weight'.
    """
    _check_prune_option(prune_option)
    mask = pruning_utils.weight_mask_variable(x, scope)
    threshold = pruning_utils.weight_threshold_variable(x, scope)
    # Recorded once per mask: an RNN cell masks its kernel at every step.
    return core_layers.masked_weight(mask, x, threshold)


def get_masked_weights():
    """The `masked_weights` collection: each mask * weight tensor."""
    return v1.get_collection(_MASKED_WEIGHT_COLLECTION)


def _variables(collection):
    """A collection of variables, as variables after `import_meta_graph` too.

    A meta graph keeps a custom collection of resource variables as their
    handle tensors; each is mapped back to its global variable.
    """
    by_handle = {variable.handle.name: variable
                 for variable in v1.global_variables()
                 if hasattr(variable, 'handle')}
    return [by_handle.get(item.name, item)
            if isinstance(item, tf.Tensor) and item.dtype == tf.resource
            else item for item in v1.get_collection(collection)]


def get_masks():
    """The `masks` collection: each pruned weight's mask variable."""
    return _variables(_MASK_COLLECTION)


def get_thresholds():
    """The `thresholds` collection: each pruned weight's threshold."""
    return _variables(_THRESHOLD_COLLECTION)


def get_weights():
    """The `kernel` collection: each pruned weight."""
    return _variables(_WEIGHT_COLLECTION)


def get_weight_sparsity():
    """The fraction of zeros in each mask, in the order of `get_masks()`.

    Returns:
      A list of float32 scalar tensors.
    """
    return [tf.math.zero_fraction(_value(mask)) for mask in get_masks()]


def _is_partitioned(variable):
    # TF 2 has no public name for `PartitionedVariable`: it is the variable
    # made of slices, which is not a `tf.Variable` and concatenates them in
    # `as_tensor()`.
    return (not isinstance(variable, tf.Variable)
            and hasattr(variable, 'as_tensor'))


def _value(variable):
    """A variable's value as one tensor, a partitioned one concatenated."""
    return variable.as_tensor() if _is_partitioned(variable) else variable


def _op_name(variable):
    """A variable's op name; a partitioned one's is its name (no `:0`)."""
    return variable.name if _is_partitioned(variable) else variable.op.name


def _resource_variables_needed():
    # TF 2's control flow (`cond_v2`) assigns only resource variables from a
    # branch; contrib's int32 step variable was a ref variable off TPU.
    return tf.compat.v1.control_flow_v2_enabled()


class Pruning:
    """contrib's pruning of the masked weights of a TF1 graph.

    Args:
      spec: a `PruningHParams` (from `get_pruning_hparams()`), a spec string
        in contrib's grammar, or None for the defaults.
      global_step: the global step variable or tensor; the graph's global
        step when None.
      sparsity: a float32 scalar variable or tensor to use instead of the
        spec's schedule; not with `nm_sparsity`.

    With `nm_sparsity=N:M` in the spec, each mask update (on contrib's
    gate) sets every mask to its weight's N:M mask, the N largest |w| of
    every M consecutive weights along the input-channel axis (the second to
    last), and leaves the thresholds as they were; the `sparsity` summary
    still shows the schedule, the masks' summaries their zeros.

    Raises:
      ValueError: the spec does not validate (contrib's messages), the
        graph has no global step and none is given, or `sparsity` is given
        with `nm_sparsity`. With `nm_sparsity`, building the update op
        raises for a masked weight of rank below 2, naming it.
    """

    def __init__(self, spec=None, global_step=None, sparsity=None):
        self._spec = hparams_lib.as_hparams(spec)
        _check_prune_option(self._spec.prune_option)
        if sparsity is not None and self._spec.nm_sparsity:
            raise ValueError(
                f'Pruning argument sparsity replaces the sparsity schedule, '
                f'which nm_sparsity={self._spec.nm_sparsity} does not use '
                f'(each update keeps N of every M weights); drop sparsity or '
                f'nm_sparsity')
        self._global_step = self._setup_global_step(global_step)
        self._sparsity = (sparsity if sparsity is not None
                          else self._setup_sparsity())
        self._last_update_step = self._setup_last_update_step()
        # Block dims and the per-weight maps are read from `_spec` when the
        # update ops are built (`schedule.plan_weight`).

    def _setup_global_step(self, global_step):
        step = (global_step if global_step is not None
                else v1.train.get_global_step())
        if step is None:
            raise ValueError(
                'Pruning needs a global step: create it first with '
                'tf.compat.v1.train.get_or_create_global_step(), or pass '
                'global_step=')
        return tf.cast(step, tf.int32)

    def _setup_sparsity(self):
        with tf.name_scope(self._spec.name):
            return tf.identity(
                schedule.scheduled_sparsity(self._spec, self._global_step),
                name='sparsity')

    def _setup_last_update_step(self):
        use_resource = self._spec.use_tpu or _resource_variables_needed()
        with v1.variable_scope(self._spec.name,
                               use_resource=use_resource) as scope:
            try:
                return v1.get_variable(
                    'last_mask_update_step', [],
                    initializer=v1.zeros_initializer(), trainable=False,
                    dtype=tf.int32)
            except ValueError:
                # A second Pruning of the same spec shares the step.
                scope.reuse_variables()
                return v1.get_variable('last_mask_update_step',
                                       dtype=tf.int32)

    def _get_sparsity(self, weight_name):
        """The target sparsity of one weight: the schedule's, or scaled."""
        plan = schedule.plan_weight(self._spec, weight_name)
        return plan.sparsity(tf.convert_to_tensor(self._sparsity,
                                                  tf.float32))

    def _mask_arguments(self, weight_name):
        # Read at graph-building time, from the spec as it is then: contrib's
        # tests set `p._spec.threshold_decay` after constructing Pruning.
        return schedule.plan_weight(self._spec, weight_name).mask_arguments

    def _update_mask(self, weights, threshold):
        """contrib's element-wise update: (new threshold, new mask).

        Args:
          weights: the weight tensor.
          threshold: its current threshold, smoothed into the new one.

        Returns:
          (new_threshold, new_mask) tensors.
        """
        name = weights.op.name
        arguments = dict(self._mask_arguments(name), block_dims=(1, 1))
        return self._mask_update(weights, threshold, name, arguments)

    def _maybe_update_block_mask(self, weights, threshold):
        """contrib's update: by blocks for a weight that squeezes to a matrix.

        Args:
          weights: the weight tensor.
          threshold: its current threshold, smoothed into the new one.

        Returns:
          (new_threshold, new_mask): the mask has the weight's shape.
        """
        name = weights.op.name
        return self._mask_update(weights, threshold, name,
                                 self._mask_arguments(name))

    def _mask_update(self, weights, threshold, name, arguments):
        with tf.name_scope(name + '_pruning_ops'):
            new_threshold, new_mask = masking.update_mask(
                weights, self._get_sparsity(name), _value(threshold),
                **arguments)
            return (tf.cast(new_threshold, threshold.dtype),
                    tf.cast(new_mask, tf.float32))

    def _get_mask_assign_ops(self):
        """The assignments of every weight's new mask and threshold."""
        masks, thresholds, weights = get_masks(), get_thresholds(), get_weights()
        if len(masks) != len(thresholds):
            raise ValueError(
                'Number of masks %s and number of thresholds %s mismatch'
                % (len(masks), len(thresholds)))
        assign_ops = []
        for mask, threshold, weight in zip(masks, thresholds, weights):
            # The variable itself, whose op name is the weight's name that
            # the maps match (a read of it is named after the read op).
            new_threshold, new_mask = self._maybe_update_block_mask(
                _value(weight), threshold)
            assign_ops.append(
                pruning_utils.variable_assign(threshold, new_threshold))
            new_mask = tf.cast(new_mask, mask.dtype)
            assign_ops.append(
                pruning_utils.partitioned_variable_assign(mask, new_mask)
                if _is_partitioned(mask)
                else pruning_utils.variable_assign(mask, new_mask))
        return assign_ops

    def mask_update_op(self):
        """An op updating every mask and setting `last_mask_update_step`.

        Returns:
          The `<name>/mask_update` no-op depending on all the assignments.
        """
        with tf.name_scope(self._spec.name):
            # Built anew on each call: ops made inside a TF 2 `cond` branch
            # cannot be used outside it.
            assign_ops = self._get_mask_assign_ops()
            with tf.control_dependencies([v1.assign(
                    self._last_update_step, self._global_step,
                    name='last_mask_update_step_assign')]):
                with tf.control_dependencies(assign_ops):
                    logging.info('Updating masks.')
                    return tf.no_op('mask_update')

    def conditional_mask_update_op(self):
        """The mask update, run only when contrib's gate says it is due.

        Due when `begin_pruning_step <= step`, `step <= end_pruning_step`
        (or `end_pruning_step < 0`) and
        `last_mask_update_step + pruning_frequency <= step`.

        Returns:
          A `tf.cond` op.
        """
        with tf.name_scope(self._spec.name):
            due = schedule.mask_update_due(
                self._spec, self._global_step, self._last_update_step)
        return tf.cond(due, self.mask_update_op, tf.no_op)

    def add_pruning_summaries(self):
        """Adds contrib's scalar summaries to the summary collections.

        Tags, under `<name>_summaries/`: `sparsity`, `last_mask_update_step`,
        and for each mask `<mask>/sparsity` (its fraction of zeros) and
        `<threshold>/threshold`.
        """
        with tf.name_scope(self._spec.name + '_summaries'):
            v1.summary.scalar('sparsity', self._sparsity)
            v1.summary.scalar('last_mask_update_step',
                              self._last_update_step)
            for mask, threshold in zip(get_masks(), get_thresholds()):
                v1.summary.scalar(_op_name(mask) + '/sparsity',
                                  tf.math.zero_fraction(_value(mask)))
                v1.summary.scalar(_op_name(threshold) + '/threshold',
                                  _value(threshold))

    def print_hparams(self):
        """Logs the hparams as JSON, as contrib did."""
        logging.info(json.dumps(self._spec.values()))


__all__ = [
    'Pruning',
    'apply_mask',
    'get_masked_weights',
    'get_masks',
    'get_pruning_hparams',
    'get_thresholds',
    'get_weight_sparsity',
    'get_weights',
]
