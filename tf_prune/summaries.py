"""TensorBoard summaries of pruning, with contrib's tags.

contrib wrote, under `<name>_summaries/` (`name` being the hparam):
`sparsity` (the schedule's value), `last_mask_update_step`, and for each
pruned weight `<mask name>/sparsity` (the fraction of zeros in the mask) and
`<threshold name>/threshold`. tf_prune adds, on request, a histogram of each
pruned weight as the layer uses it (`mask * weight`).
"""

import tensorflow as tf


def summary_prefix(hparams):
    """`<name>_summaries`, contrib's scope for its summaries."""
    return f'{hparams.name}_summaries'


def write_pruning_summaries(hparams, step, sparsity, last_mask_update_step,
                            pruned_weights, histograms=False):
    """Writes contrib's pruning summaries to the default summary writer.

    Args:
      hparams: the `PruningHParams` (its `name` prefixes the tags).
      step: the step to record, an integer scalar.
      sparsity: the schedule's global sparsity at `step`.
      last_mask_update_step: the step of the last mask update.
      pruned_weights: the `PrunedWeight`s to report.
      histograms: also write `<weight name>/masked_weight` histograms.
    """
    prefix = summary_prefix(hparams)
    step = tf.cast(step, tf.int64)
    tf.summary.scalar(f'{prefix}/sparsity', sparsity, step=step)
    tf.summary.scalar(f'{prefix}/last_mask_update_step',
                      last_mask_update_step, step=step)
    for p in pruned_weights:
        tf.summary.scalar(f'{prefix}/{p.mask_name}/sparsity',
                          tf.math.zero_fraction(p.mask.value), step=step)
        tf.summary.scalar(f'{prefix}/{p.threshold_name}/threshold',
                          p.threshold.value, step=step)
        if histograms:
            tf.summary.histogram(f'{prefix}/{p.name}/masked_weight',
                                 p.weight.value * p.mask.value, step=step)
