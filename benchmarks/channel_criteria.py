r"""Channel criteria against each other, and against a random ranking and
other schedules, on the ResNet of examples/fashion_mnist_channels.py.

The model is that example's `resnet()`, on Fashion-MNIST, with its training:
`--epochs` minus `--prune_epochs` epochs dense (Adam at a constant
`--learning_rate`), then `--prune_epochs` epochs of pruning and fine-tuning
with a fresh Adam whose rate decays from `--learning_rate` to 0 (cosine).
The example's flags set it (importing the example defines them):
`--widths`, `--learning_rate`, `--epochs`, `--prune_epochs`, `--batch_size`,
`--seed`, `--train_examples`, `--data_dir`, and `--pruning_hparams`, whose
schedule every gradual run uses (its `channel_criterion`, `bn_l1_penalty`
and `target_sparsity` are replaced per run).

All in one process: the dense phase runs once and every run starts from its
weights, trains on the same batches in the same order (the example's
shuffling seed) and is then shrunk (`tf_prune.shrink`). The dense baseline
trains the second phase on without pruning: the same epochs in all as every
pruned run. For each channel sparsity in `--sparsities`:

- criteria, on the example's schedule (`PruningCallback`): l1, l2,
  bn_scale, bn_scale with `bn_l1_penalty=1e-4` (network slimming's L1
  penalty on the BatchNorm scales, added during the pruning phase only),
  taylor, and random: a `ChannelPruning` subclass whose `channel_scores`
  are a fixed random vector per channel group (uniform, seeded by the
  group), driven by a small callback calling `conditional_mask_update`
  after each step, as `PruningCallback` does;
- at the first sparsity only, l1 on other schedules: `one-shot` (masked at
  the target before the phase, `tf_prune.prune(..., one_shot=True)`, then
  fine-tuned for all of it), `short` (the schedule ending at half its
  `sparsity_function_end_step`, updates twice as often), `late` (ending at
  90% of the phase, about as many updates, masks updated to its end),
  `updated to the end` (the example's schedule with `end_pruning_step=-1`:
  masks may still change after they reach the target); and l1 on the
  example's schedule with another shuffling seed of the phase, which
  measures the noise of one run.

Per run: test accuracy of the shrunk model (10,000 images), parameters and
FLOPs (`tf_prune.structured.cost`) of the shrunk model, the fraction of
removable channels masked, seconds.

Writes `--json` (default benchmarks/results/channel_criteria.json). `--quick`
is a smoke run (1,280 training images, 1 + 1 epochs, a schedule of a few
steps, the first sparsity only) that writes no file unless --json is given.

Usage: python benchmarks/channel_criteria.py [--sparsities=0.5,0.7]
  [--json=benchmarks/results/channel_criteria.json] [--quick]
"""

import json
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'examples'))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

import fashion_mnist_channels as example  # noqa: E402  (defines its flags)
import machine  # noqa: E402
import render_docs  # noqa: E402
import tf_prune  # noqa: E402
from tf_prune.core import atomic  # noqa: E402
from tf_prune.structured import cost  # noqa: E402

flags.DEFINE_list('sparsities', ['0.5', '0.7'],
                  'Channel sparsities (target_sparsity) to compare at')
flags.DEFINE_bool('quick', False, 'Smoke run: 1,280 images, 1 + 1 epochs, '
                  'the first sparsity only; writes no file unless --json')
flags.DEFINE_string('json', 'benchmarks/results/channel_criteria.json',
                    'Where to write the figures ("" for nowhere)')
FLAGS = flags.FLAGS

PENALTY = 1e-4
QUICK_HPARAMS = ('name=channel_criteria,structure=channel,'
                 'target_sparsity=0.5,pruning_frequency=2,'
                 'sparsity_function_end_step=6')
OTHER_SHUFFLE = 100  # added to --seed for the noise run's shuffling


class RandomChannelPruning(tf_prune.structured.ChannelPruning):
    """Ranks each group's channels by a fixed random vector (seeded by the
    group's id): the baseline a criterion has to beat."""

    def channel_scores(self, plan):
        rng = np.random.default_rng(1000 + plan.group.id)
        return tf.constant(rng.uniform(size=len(plan.removable)),
                           tf.float32)


class DriveController(keras.callbacks.Callback):
    """Creates `controller_class(hparams, model)` at the start of `fit` and
    runs its gated mask update after each step, as `PruningCallback`
    does."""

    def __init__(self, controller_class, hparams):
        super().__init__()
        self._class = controller_class
        self._hparams = hparams
        self.pruning = None

    def on_train_begin(self, logs=None):
        self.pruning = self._class(self._hparams, self.model)

    def on_train_batch_end(self, batch, logs=None):
        self.pruning.conditional_mask_update(self.model.optimizer.iterations)


def _hparams(base, **overrides):
    return tf_prune.PruningHParams(**{**base.values(), **overrides}).validate()


def runs(base, sparsities, phase_steps):
    """The runs: `(sparsity, kind, label, hparams, how)`; `how` is
    'callback', 'random', 'one_shot' or 'other_shuffle'."""
    end, frequency = (base.sparsity_function_end_step,
                      base.pruning_frequency)
    late_end = max(1, round(0.9 * phase_steps))
    planned = []
    for index, sparsity in enumerate(sparsities):
        at = {'target_sparsity': sparsity}
        planned += [
            (sparsity, 'criterion', 'l1',
             _hparams(base, channel_criterion='l1', **at), 'callback'),
            (sparsity, 'criterion', 'l2',
             _hparams(base, channel_criterion='l2', **at), 'callback'),
            (sparsity, 'criterion', 'bn_scale',
             _hparams(base, channel_criterion='bn_scale', **at), 'callback'),
            (sparsity, 'criterion', f'bn_scale, bn_l1_penalty={PENALTY:g}',
             _hparams(base, channel_criterion='bn_scale',
                      bn_l1_penalty=PENALTY, **at), 'callback'),
            (sparsity, 'criterion', 'taylor',
             _hparams(base, channel_criterion='taylor', **at), 'callback'),
            (sparsity, 'criterion', 'random',
             _hparams(base, channel_criterion='l1', **at), 'random')]
        if index:
            continue
        planned += [
            (sparsity, 'schedule', 'l1, one-shot',
             _hparams(base, channel_criterion='l1', **at), 'one_shot'),
            (sparsity, 'schedule', 'l1, short',
             _hparams(base, channel_criterion='l1',
                      sparsity_function_end_step=max(1, end // 2),
                      pruning_frequency=max(1, frequency // 2), **at),
             'callback'),
            (sparsity, 'schedule', 'l1, late',
             _hparams(base, channel_criterion='l1',
                      sparsity_function_end_step=late_end,
                      end_pruning_step=-1,
                      pruning_frequency=max(1, round(
                          frequency * late_end / max(end, 1))), **at),
             'callback'),
            (sparsity, 'schedule', 'l1, updated to the end',
             _hparams(base, channel_criterion='l1', end_pruning_step=-1,
                      **at), 'callback'),
            (sparsity, 'noise', 'l1, other shuffle',
             _hparams(base, channel_criterion='l1', **at), 'other_shuffle')]
    return planned


def _schedule(hparams, how):
    if how == 'one_shot':
        return 'one-shot, then fine-tuned'
    updates = ('updated to the end' if hparams.end_pruning_step == -1
               else f'fixed after step {hparams.end_pruning_step}')
    return (f'gradual to step {hparams.sparsity_function_end_step}, every '
            f'{hparams.pruning_frequency}, {updates}')


def prune_run(pretrained, widths, hparams, how, train, test):
    """One pruned run from the dense phase's weights; its figures."""
    started = time.perf_counter()
    keras.backend.clear_session()
    dense = example.resnet(widths)
    dense.set_weights(pretrained)
    seed = FLAGS.seed + (OTHER_SHUFFLE if how == 'other_shuffle' else 0)
    callbacks = []
    if how == 'one_shot':
        model = tf_prune.prune(dense, hparams, one_shot=True)
        masked = tf_prune.Pruning(hparams, model)
    elif how == 'random':
        model = tf_prune.prune(dense, hparams)
        callbacks = [DriveController(RandomChannelPruning, hparams)]
    else:
        model = tf_prune.prune(dense, hparams)
        callbacks = [tf_prune.PruningCallback(hparams)]
    example.fine_tune(model, train, FLAGS.prune_epochs, FLAGS.batch_size,
                      seed, callbacks, verbose=0,
                      learning_rate=FLAGS.learning_rate)
    if callbacks:
        masked = callbacks[0].pruning
    shrunk = tf_prune.shrink(model)
    images, labels = test
    return {
        'test_accuracy': example.accuracy(example.predict(shrunk, images),
                                          labels),
        'params': int(shrunk.count_params()),
        'flops': int(cost.flops(shrunk)),
        'channels_masked': round(float(masked.recount_sparsity().numpy()), 4),
        'seconds': round(time.perf_counter() - started, 1)}


def main(argv):
    del argv
    logging.set_verbosity(logging.ERROR)
    tf.get_logger().setLevel('ERROR')
    if FLAGS.quick:
        FLAGS.train_examples, FLAGS.epochs, FLAGS.prune_epochs = 1280, 2, 1
        if not FLAGS['pruning_hparams'].present:
            FLAGS.pruning_hparams = QUICK_HPARAMS
    try:
        sparsities = [float(s) for s in FLAGS.sparsities]
    except ValueError:
        raise app.UsageError(f'--sparsities must be numbers, got '
                             f'{FLAGS.sparsities}') from None
    if FLAGS.quick:
        sparsities = sparsities[:1]
    if not sparsities or not all(0 < s < 1 for s in sparsities):
        raise app.UsageError('--sparsities must be in (0, 1)')
    if not 1 <= FLAGS.prune_epochs <= FLAGS.epochs:
        raise app.UsageError('--prune_epochs must be in [1, --epochs]')
    try:
        base = tf_prune.flags.pruning_hparams_from_flags()
        widths = example.widths_from_flags()
        train, test = example.load_data(FLAGS.data_dir, FLAGS.train_examples)
    except (ValueError, example.support.DataError) as error:
        raise app.UsageError(str(error)) from None
    if base.structure != 'channel':
        raise app.UsageError('--pruning_hparams must say structure=channel')
    writes = not FLAGS.quick or FLAGS['json'].present
    json_path = FLAGS.json if writes else ''

    started = time.perf_counter()
    load_start = os.getloadavg()
    dense_epochs = FLAGS.epochs - FLAGS.prune_epochs
    phase_steps = FLAGS.prune_epochs * example.steps_per_epoch(
        train, FLAGS.batch_size)
    dense = example.pretrain(train, dense_epochs, FLAGS.batch_size,
                             FLAGS.seed, verbose=0,
                             widths=widths,
                             learning_rate=FLAGS.learning_rate)
    pretrained = dense.get_weights()
    images, labels = test
    pretrained_accuracy = example.accuracy(example.predict(dense, images),
                                           labels)
    example.fine_tune(dense, train, FLAGS.prune_epochs, FLAGS.batch_size,
                      FLAGS.seed, verbose=0,
                      learning_rate=FLAGS.learning_rate)
    baseline = {
        'test_accuracy': example.accuracy(example.predict(dense, images),
                                          labels),
        'pretrained_test_accuracy': pretrained_accuracy,
        'params': int(dense.count_params()),
        'flops': int(cost.flops(dense)),
        'seconds': round(time.perf_counter() - started, 1)}
    print(f"dense: {baseline['test_accuracy']:.4f} "
          f"({baseline['seconds']:.0f} s)", flush=True)

    rows = []
    for sparsity, kind, label, hparams, how in runs(base, sparsities,
                                                    phase_steps):
        figures = prune_run(pretrained, widths, hparams, how, train, test)
        rows.append({
            'sparsity': sparsity, 'kind': kind, 'label': label,
            'criterion': ('random' if how == 'random'
                          else hparams.channel_criterion),
            'bn_l1_penalty': hparams.bn_l1_penalty,
            'schedule': _schedule(hparams, how),
            'shuffle_seed_offset': OTHER_SHUFFLE if how == 'other_shuffle'
            else 0, **figures})
        print(f"{sparsity:g} {label}: {figures['test_accuracy']:.4f} "
              f"({figures['seconds']:.0f} s)", flush=True)

    result = {
        'machine': machine.describe(),
        'load_average_start': [round(v, 2) for v in load_start],
        'load_average_end': [round(v, 2) for v in os.getloadavg()],
        'model': 'resnet() of examples/fashion_mnist_channels.py',
        'widths': list(widths),
        'learning_rate': FLAGS.learning_rate,
        'train_examples': len(train[0]), 'test_examples': len(labels),
        'epochs': FLAGS.epochs, 'prune_epochs': FLAGS.prune_epochs,
        'batch_size': FLAGS.batch_size, 'seed': FLAGS.seed,
        'phase_steps': phase_steps,
        'pruning_hparams': FLAGS.pruning_hparams,
        'bn_l1_penalty': PENALTY, 'quick': FLAGS.quick,
        'flops_convention': cost.FLOPS_CONVENTION,
        'dense': baseline, 'rows': rows,
        'seconds': round(time.perf_counter() - started, 1)}
    print(render_docs.channel_criteria_table(result))
    print(render_docs.channel_criteria_summary(result))
    print(f"total {result['seconds']:.0f} s")
    if json_path:
        atomic.write_bytes(json_path,
                           (json.dumps(result, indent=2) + '\n').encode())
        print(f'wrote {json_path}')


if __name__ == '__main__':
    app.run(main)
