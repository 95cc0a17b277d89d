"""contrib's sparsity schedule, global and per weight.

The global schedule is
`s(t) = target + (initial - target) * (1 - p)^exponent`, with
`p = clip((t - begin) / (end - begin), 0, 1)`, in float32 as contrib's
optimized graph computed it: the step cast to int32, and the division by the
constant `end - begin` done as a multiplication by its float32 reciprocal
(TF1's graph optimizer rewrote it so; the golden values need it).

Validated hparams keep every step within int32. Differences and sums of
steps are taken in int64, so that they cannot wrap where contrib's int32
arithmetic did (a step before begin, a last update near 2**31 - 1); where
contrib's did not wrap, the results are the same.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tf_prune.core import hparams as hparams_lib


def compute_sparsity(hparams, step):
    """The global target sparsity at a training step.

    Args:
      hparams: a `PruningHParams` or a spec string.
      step: the global step, a Python int or an integer tensor (cast to
        int32, as contrib did).

    Returns:
      A float32 scalar tensor.

    Raises:
      ValueError: the hparams do not validate.
    """
    return scheduled_sparsity(hparams_lib.as_hparams(hparams), step)


def scheduled_sparsity(hparams, step):
    """`compute_sparsity` for hparams already validated (no check again)."""
    begin = hparams.sparsity_function_begin_step
    end = hparams.sparsity_function_end_step
    reciprocal = np.float32(1.0) / np.float32(end - begin)
    elapsed = tf.cast(_int32_step(step) - begin, tf.float32)
    progress = tf.minimum(1.0, tf.maximum(0.0, elapsed * reciprocal))
    # contrib subtracted the Python floats before the graph saw them.
    scale = np.float32(hparams.initial_sparsity - hparams.target_sparsity)
    decay = tf.pow(1.0 - progress,
                   np.float32(hparams.sparsity_function_exponent))
    return scale * decay + np.float32(hparams.target_sparsity)


def _int32_step(step):
    """contrib's int32 cast of a step tensor, held in int64 for arithmetic."""
    return tf.cast(tf.cast(step, tf.int32), tf.int64)


def _wrap_int32(value):
    """A Python int as `tf.cast(value, tf.int32)` wraps it."""
    return (value + 2**31) % 2**32 - 2**31


def _single_match(entries, weight_name, hparam):
    """The value of the only `(regex, value)` entry that matches, or None."""
    matches = [(regex.pattern, value) for regex, value in entries
               if regex.search(weight_name)]
    if len(matches) > 1:
        patterns = ', '.join(pattern for pattern, _ in matches)
        raise ValueError(
            f'Multiple matches in {hparam} for weight {weight_name} '
            f'({patterns}); make the patterns exclusive')
    return matches[0][1] if matches else None


@dataclasses.dataclass(frozen=True)
class WeightPlan:
    """One weight's pruning hparams, resolved once from the maps.

    Attributes:
      scale: `its target / target_sparsity` (float32) for a weight a
        `weight_sparsity_map` pattern matches, else None.
      mask_arguments: the keyword arguments of `update_mask` for this
        weight: threshold_decay, block_dims (from `block_dims_map` or
        `block_height`/`block_width`; -1 is the whole dimension),
        block_pooling_function, method, nbins, the weight's name for
        update_mask's messages, and n_of_m ((n, m) from `nm_sparsity`, or
        None).
    """
    scale: object
    mask_arguments: dict

    def sparsity(self, global_sparsity):
        """The weight's target for a global sparsity (a float32 scalar)."""
        if self.scale is None:
            return global_sparsity
        return global_sparsity * self.scale


def _block_dims(hparams, weight_name):
    dims = _single_match(
        hparams_lib.parse_block_dims_map(hparams.block_dims_map),
        weight_name, 'block_dims_map')
    return dims or [hparams.block_height, hparams.block_width]


def plan_weight(hparams, weight_name):
    """Resolves `weight_sparsity_map` and `block_dims_map` for one weight.

    A pattern is an unanchored regex search in `weight_name`.

    Args:
      hparams: a validated `PruningHParams`.
      weight_name: e.g. `conv1/kernel`.

    Returns:
      A `WeightPlan`.

    Raises:
      ValueError: more than one pattern of a map matches `weight_name`.
    """
    target = _single_match(
        hparams_lib.parse_weight_sparsity_map(hparams.weight_sparsity_map),
        weight_name, 'weight_sparsity_map')
    dims = _block_dims(hparams, weight_name)
    # contrib divided two float32 constants, which its graph folded.
    scale = (None if target is None
             else np.float32(target) / np.float32(hparams.target_sparsity))
    return WeightPlan(
        scale=scale,
        mask_arguments={
            'threshold_decay': hparams.threshold_decay,
            'block_dims': tuple(dims),
            'block_pooling_function': hparams.block_pooling_function,
            'method': hparams.threshold_method,
            'nbins': hparams.nbins,
            'name': weight_name,
            'n_of_m': hparams_lib.parse_n_of_m(hparams.nm_sparsity),
        })


def weight_sparsity(hparams, weight_name, step):
    """The target sparsity of one weight at a training step.

    A weight matched by a `weight_sparsity_map` pattern (an unanchored regex
    search in `weight_name`) gets the global schedule scaled by
    `its target / target_sparsity`, as contrib did; other weights get the
    global schedule.

    Args:
      hparams: a `PruningHParams` or a spec string.
      weight_name: e.g. `conv1/kernel`.
      step: the global step, a Python int or an integer tensor.

    Returns:
      A float32 scalar tensor.

    Raises:
      ValueError: more than one pattern matches, or the hparams do not
        validate.
    """
    hparams = hparams_lib.as_hparams(hparams)
    return plan_weight(hparams, weight_name).sparsity(
        scheduled_sparsity(hparams, step))


def block_dims(hparams, weight_name):
    """The block (height, width) for one weight.

    Args:
      hparams: a `PruningHParams` or a spec string.
      weight_name: e.g. `dense1/kernel`.

    Returns:
      A [height, width] list from the matching `block_dims_map` entry, else
      [block_height, block_width]; -1 stands for the whole dimension, which
      `update_mask` resolves against each weight's own shape.

    Raises:
      ValueError: more than one pattern matches, or the hparams do not
        validate.
    """
    return list(_block_dims(hparams_lib.as_hparams(hparams), weight_name))


def mask_update_due(hparams, step, last_update_step):
    """contrib's gate: whether the conditional mask update runs at `step`.

    True when `begin_pruning_step <= step`, `step <= end_pruning_step` (or
    `end_pruning_step < 0`) and `last_update_step + pruning_frequency <= step`.
    In contrib's training loop the step is incremented first and the gate
    then sees the new step. Both steps are cast to int32 as contrib cast them
    (Python ints are wrapped the same way), and the sum is taken in int64,
    so Python ints and tensors give the same answer for any step.

    Args:
      hparams: a `PruningHParams` (not validated again: the controller
        calls this on the host at every step) or a spec string.
      step: the global step, a Python int or an integer tensor.
      last_update_step: the step of the last mask update (0 before the
        first), a Python int or an integer tensor.

    Returns:
      A Python bool when both steps are Python ints, else a bool scalar
      tensor.
    """
    if isinstance(hparams, str):
        hparams = hparams_lib.as_hparams(hparams)
    on_host = isinstance(step, int) and isinstance(last_update_step, int)
    if on_host:
        step = _wrap_int32(step)
        last_update_step = _wrap_int32(last_update_step)
    else:
        step = _int32_step(step)
        last_update_step = _int32_step(last_update_step)
    conditions = [step >= hparams.begin_pruning_step,
                  last_update_step + hparams.pruning_frequency <= step]
    if hparams.end_pruning_step >= 0:
        conditions.append(step <= hparams.end_pruning_step)
    if on_host:
        return all(conditions)
    return tf.reduce_all(tf.stack(conditions))
