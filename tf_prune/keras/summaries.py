"""TensorBoard summaries of pruning, with contrib's tags.

contrib wrote, under `<name>_summaries/` (`name` being the hparam):
`sparsity` (the schedule's value), `last_mask_update_step`, and for each
pruned weight `<mask name>/sparsity` (the fraction of zeros in the mask) and
`<threshold name>/threshold`. tf_prune adds `model_sparsity` (the fraction of
zeros over all masks: the sparsity reached, beside the schedule's target), on
request a histogram of each pruned weight as the layer uses it
(`mask * weight`), a layout for TensorBoard's custom-scalars dashboard
that gathers these tags into one "Pruning" category, and the marker of a
run's (re)start that keeps a resumed run's curves from doubling back.
"""

import re
import time

import tensorflow as tf
# TF has no public API for writing an event other than a summary.
from tensorflow.python.ops import summary_ops_v2
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalar_metadata

DASHBOARD_CATEGORY = 'Pruning'


def summary_prefix(hparams):
    """`<name>_summaries`, contrib's scope for its summaries."""
    return f'{hparams.name}_summaries'


def dashboard_layout(hparams):
    """The custom-scalars layout of one `Pruning`'s summaries.

    Args:
      hparams: the `PruningHParams` (its `name` prefixes the tags).

    Returns:
      A `layout_pb2.Layout` with one category, "Pruning", of four charts:
      target (`sparsity`) against reached (`model_sparsity`) sparsity, the
      sparsity of each mask, each threshold, and the last mask update step;
      with `structure=channel` two more: the fraction of each group's
      channels kept, and the model's parameter and FLOP fractions. Each
      chart selects its tags by a regular expression.
    """
    prefix = re.escape(summary_prefix(hparams))

    def chart(title, *patterns):
        return layout_pb2.Chart(
            title=title, multiline=layout_pb2.MultilineChartContent(
                tag=[f'^{prefix}/{pattern}$' for pattern in patterns]))

    charts = [
        chart('Sparsity: target (sparsity) and reached (model_sparsity)',
              'sparsity', 'model_sparsity'),
        chart('Sparsity of each mask', '.+/mask/sparsity'),
        chart('Threshold of each mask', '.+/threshold/threshold'),
        chart('Last mask update step', 'last_mask_update_step'),
    ]
    if hparams.structure == 'channel':
        charts += [
            chart('Channels kept, per group', '.+/channels/kept_fraction'),
            chart('Parameters and FLOPs kept', 'parameter_fraction',
                  'flop_fraction'),
        ]
    return layout_pb2.Layout(category=[layout_pb2.Category(
        title=DASHBOARD_CATEGORY, chart=charts)])


def write_dashboard_layout(hparams):
    """Writes `dashboard_layout(hparams)` to the default summary writer.

    TensorBoard reads the layout from any run under its `--logdir` and merges
    the layouts of several runs by category title.

    Args:
      hparams: the `PruningHParams`.
    """
    tf.summary.write(
        custom_scalar_metadata.CONFIG_SUMMARY_TAG,
        tf.constant(dashboard_layout(hparams).SerializeToString()), step=0,
        metadata=custom_scalar_metadata.create_summary_metadata()
        .SerializeToString())


def write_run_start(step):
    """Marks the start of a run, fresh or resumed, at `step`.

    Writes TensorBoard's restart marker (an event `SessionLog.START` at
    `step`) to the default summary writer; nothing without one. TensorBoard
    takes a run directory's first marker for the start of the run, and a
    later one for a restart: it then drops, from the event files before it,
    every event at `step` or later. Those are the events a training killed
    after its last checkpoint wrote past it, which the resumed training
    writes again: without the marker the curves would double back.

    Args:
      step: the first step the run writes summaries at: one past the
        restored step (1 for a fresh run).
    """
    if not summary_ops_v2.has_default_writer():
        return
    event = tf.compat.v1.Event(
        wall_time=time.time(), step=int(step),
        session_log=tf.compat.v1.SessionLog(
            status=tf.compat.v1.SessionLog.START))
    summary_ops_v2.import_event(tf.constant(event.SerializeToString()))


def _write_schedule(hparams, step, sparsity, model_sparsity,
                    last_mask_update_step):
    prefix = summary_prefix(hparams)
    tf.summary.scalar(f'{prefix}/sparsity', sparsity, step=step)
    tf.summary.scalar(f'{prefix}/model_sparsity', model_sparsity, step=step)
    tf.summary.scalar(f'{prefix}/last_mask_update_step',
                      last_mask_update_step, step=step)


def _write_histograms(hparams, step, pruned_weights):
    prefix = summary_prefix(hparams)
    for p in pruned_weights:
        tf.summary.histogram(f'{prefix}/{p.name}/masked_weight',
                             p.weight.value * p.mask.value, step=step)


def write_pruning_summaries(hparams, step, sparsity, model_sparsity,
                            last_mask_update_step, pruned_weights,
                            histograms=False):
    """Writes contrib's pruning summaries to the default summary writer.

    Args:
      hparams: the `PruningHParams` (its `name` prefixes the tags).
      step: the step to record, an integer scalar.
      sparsity: the schedule's global sparsity at `step`.
      model_sparsity: the fraction of zeros over all masks.
      last_mask_update_step: the step of the last mask update.
      pruned_weights: the `PrunedWeight`s to report.
      histograms: also write `<weight name>/masked_weight` histograms.
    """
    prefix = summary_prefix(hparams)
    step = tf.cast(step, tf.int64)
    _write_schedule(hparams, step, sparsity, model_sparsity,
                    last_mask_update_step)
    for p in pruned_weights:
        tf.summary.scalar(f'{prefix}/{p.mask_name}/sparsity',
                          tf.math.zero_fraction(p.mask.value), step=step)
        tf.summary.scalar(f'{prefix}/{p.threshold_name}/threshold',
                          p.threshold.value, step=step)
    if histograms:
        _write_histograms(hparams, step, pruned_weights)


def write_channel_summaries(hparams, step, sparsity, model_sparsity,
                            last_mask_update_step, groups,
                            parameter_fraction, flop_fraction,
                            histogram_weights=()):
    """Writes the summaries of channel pruning to the default writer.

    contrib's `sparsity` and `last_mask_update_step`, `model_sparsity` (the
    fraction of removable channels masked), and per channel group
    `<group>/channels/mask/sparsity` (of its removable channels),
    `<group>/channels/threshold/threshold` and
    `<group>/channels/kept_fraction` (of all its channels), plus
    `parameter_fraction` and `flop_fraction`: what the shrunk model keeps.

    Args:
      hparams: the `PruningHParams` (its `name` prefixes the tags).
      step: the step to record, an integer scalar.
      sparsity: the schedule's global sparsity at `step`.
      model_sparsity: the fraction of removable channels masked.
      last_mask_update_step: the step of the last mask update.
      groups: `(name, kept fraction, ChannelState)` per group.
      parameter_fraction: parameters the shrunk model keeps, a fraction.
      flop_fraction: FLOPs it keeps, a fraction.
      histogram_weights: `PrunedWeight`s to write histograms of.
    """
    prefix = summary_prefix(hparams)
    step = tf.cast(step, tf.int64)
    _write_schedule(hparams, step, sparsity, model_sparsity,
                    last_mask_update_step)
    for name, kept_fraction, state in groups:
        tf.summary.scalar(f'{prefix}/{name}/channels/mask/sparsity',
                          tf.math.zero_fraction(state.mask.value), step=step)
        tf.summary.scalar(f'{prefix}/{name}/channels/threshold/threshold',
                          state.threshold.value, step=step)
        tf.summary.scalar(f'{prefix}/{name}/channels/kept_fraction',
                          kept_fraction, step=step)
    tf.summary.scalar(f'{prefix}/parameter_fraction', parameter_fraction,
                      step=step)
    tf.summary.scalar(f'{prefix}/flop_fraction', flop_fraction, step=step)
    _write_histograms(hparams, step, histogram_weights)
