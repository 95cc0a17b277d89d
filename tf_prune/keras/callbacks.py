"""Callbacks for `fit`: contrib's mask updates, and training directories."""

import weakref

import keras
import tensorflow as tf

from tf_prune.core import atomic
from tf_prune.core import hparams as hparams_lib
from tf_prune.keras import training_dir
from tf_prune.keras.controller import Pruning
from tf_prune.keras.controller import check_override_applies
from tf_prune.keras.controller import check_sparsity_override


class TrainingDirectory(keras.callbacks.Callback):
    """Makes a directory the self-describing home of one pruned training run.

    At the start of `fit` it records the model's config and the pruning
    hparams (`tf_prune_model.json`), and restores the latest checkpoint when
    there is one: weights, masks, thresholds and the optimizer's step, so
    training continues where it stopped. At the end of every epoch it writes
    a checkpoint of the model and optimizer, numbered by the step.
    `tools/strip_pruning_vars.py --checkpoint_dir` strips the directory and
    `tf_prune.checkpoints.load_model` rebuilds the model from it.

    Keras' `BackupAndRestore` is not used: it deletes its backup when `fit`
    ends (the directory here is what the tools read afterwards), keeps
    weights without the model's config, and records no hparams.

    From the start of `fit` to its end the directory is locked
    (`atomic.DirectoryLock`): a training in another process that uses it
    meanwhile is refused, rather than mixing its checkpoints in. The kernel
    releases the lock of a process killed. What checkpoint writes a killed
    training left unfinished (`ckpt-<step>_temp/`) is removed at the start.

    Args:
      directory: the training directory (created if missing).
      hparams: the `PruningHParams` or spec the model is trained with. A
        directory that records other hparams is refused here, before
        anything is written.
      max_to_keep: how many checkpoints to keep.

    Raises:
      ValueError: the directory was trained with other hparams.
      DirectoryInUseError: from `fit`, when another process trains
        in the directory.
    """

    def __init__(self, directory, hparams, max_to_keep=5):
        super().__init__()
        self._directory = directory
        self._hparams = hparams_lib.as_hparams(hparams)
        self._max_to_keep = max_to_keep
        self._checkpoints = None
        self._model_seen = None
        self._lock = atomic.DirectoryLock(directory, 'training')
        # Also released when this callback is collected: `fit` skips
        # on_train_end when it raises.
        weakref.finalize(self, self._lock.release)
        training_dir.check_hparams(directory, self._hparams)

    def on_train_begin(self, logs=None):
        self._lock.acquire()
        training_dir.remove_checkpoint_leftovers(self._directory)
        if self._model_seen is self.model:
            return
        training_dir.check_hparams(self._directory, self._hparams)
        training_dir.write_model_config(self.model, self._directory,
                                        self._hparams)
        self._checkpoints = training_dir.TrainingCheckpoints(
            self.model, self._directory, self._max_to_keep, lock=False)
        self._checkpoints.restore_latest()
        self._model_seen = self.model

    def on_epoch_end(self, epoch, logs=None):
        self._checkpoints.save()

    def on_train_end(self, logs=None):
        self._lock.release()


class PruningCallback(keras.callbacks.Callback):
    """Runs contrib's conditional mask update after every training step.

    The step is `optimizer.iterations`, read after the optimizer stepped (the
    reference wiring: the step is incremented, then the gate sees the new
    step). The model's sparsity (fraction of zeros over all masks) goes into
    the logs as `sparsity`, so the progress bar shows it. With
    `steps_per_execution` above 1, Keras calls back once per execution, so
    the gate sees every `steps_per_execution`-th step only.

    Args:
      hparams: a `PruningHParams` or spec string.
      log_dir: when given, TensorBoard event files with contrib's tags
        (`<name>_summaries/...`) and weight histograms are written there at
        every mask update and at the end of training.
      sparsity: passed to `Pruning` (a variable or callable overriding the
        schedule, with values in [0, 1); not with `nm_sparsity`).
      checkpoint_dir: a shortcut for `TrainingDirectory(checkpoint_dir,
        hparams, max_to_keep)` run by this callback, before it.
      max_to_keep: how many checkpoints `checkpoint_dir` keeps.

    Raises:
      ValueError: invalid hparams, a `sparsity` holding a value outside
        [0, 1) or given with `nm_sparsity`, or a `checkpoint_dir` trained
        with other hparams.
    """

    def __init__(self, hparams, log_dir=None, sparsity=None,
                 checkpoint_dir=None, max_to_keep=5):
        super().__init__()
        self._hparams = hparams_lib.as_hparams(hparams)
        check_sparsity_override(sparsity, 'PruningCallback')
        check_override_applies(self._hparams, sparsity, 'PruningCallback')
        self._log_dir = log_dir
        self._sparsity = sparsity
        self._directory = (
            TrainingDirectory(checkpoint_dir, self._hparams, max_to_keep)
            if checkpoint_dir else None)
        self._pruning = None
        self._writer = None
        self._recount = False

    @property
    def pruning(self):
        """The `Pruning` controller of the model being trained."""
        return self._pruning

    def set_model(self, model):
        super().set_model(model)
        if self._directory is not None:
            self._directory.set_model(model)

    def on_train_begin(self, logs=None):
        if self._directory is not None:
            self._directory.on_train_begin(logs)
        if self._pruning is None or self._pruning.model is not self.model:
            self._pruning = Pruning(self._hparams, self.model, self._sparsity)
        # Masks may have been restored since (by a TrainingDirectory listed
        # after this callback, say): counted before the first step.
        self._recount = True
        if self._log_dir and self._writer is None:
            self._writer = tf.summary.create_file_writer(self._log_dir)

    def _step(self):
        return self.model.optimizer.iterations

    def on_train_batch_begin(self, batch, logs=None):
        if self._recount:
            self._pruning.recount_sparsity()
            self._recount = False

    def on_train_batch_end(self, batch, logs=None):
        self._pruning.conditional_mask_update(self._step(), self._writer)
        if logs is not None:
            logs['sparsity'] = self._pruning.model_sparsity.read_value()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs['sparsity'] = float(self._pruning.model_sparsity.numpy())
        if self._directory is not None:
            self._directory.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            with self._writer.as_default():
                self._pruning.add_final_summaries(self._step(),
                                                  histograms=True)
            self._writer.flush()
        if self._directory is not None:
            self._directory.on_train_end(logs)
