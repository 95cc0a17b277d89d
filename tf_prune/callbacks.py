"""`PruningCallback`: contrib's mask updates and summaries inside `model.fit`."""

import keras
import tensorflow as tf

from tf_prune import checkpoints
from tf_prune import hparams as hparams_lib
from tf_prune.pruning import Pruning


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
        schedule).
      checkpoint_dir: when given, a self-describing training directory
        (see `tf_prune.checkpoints`): the model's config, and a checkpoint
        of the model and optimizer at the end of every epoch. When it holds
        a checkpoint already, training continues from it: weights, masks,
        thresholds and the optimizer's step are restored before the first
        step. `tools/strip_pruning_vars.py --checkpoint_dir` strips it.
      max_to_keep: how many checkpoints `checkpoint_dir` keeps.
    """

    def __init__(self, hparams, log_dir=None, sparsity=None,
                 checkpoint_dir=None, max_to_keep=5):
        super().__init__()
        self._hparams = hparams_lib.as_hparams(hparams)
        self._log_dir = log_dir
        self._sparsity = sparsity
        self._checkpoint_dir = checkpoint_dir
        self._max_to_keep = max_to_keep
        self._pruning = None
        self._pruned_model = None
        self._writer = None
        self._checkpoints = None

    @property
    def pruning(self):
        """The `Pruning` controller of the model being trained."""
        return self._pruning

    def on_train_begin(self, logs=None):
        if self._pruned_model is not self.model:
            self._pruning = Pruning(self._hparams, self.model, self._sparsity)
            self._pruned_model = self.model
            if self._checkpoint_dir:
                checkpoints.write_model_config(self.model,
                                               self._checkpoint_dir)
                self._checkpoints = checkpoints.TrainingCheckpoints(
                    self.model, self._checkpoint_dir, self._max_to_keep)
                if self._checkpoints.restore_latest():
                    self._pruning.recount_sparsity()
        if self._log_dir and self._writer is None:
            self._writer = tf.summary.create_file_writer(self._log_dir)

    def _step(self):
        return self.model.optimizer.iterations

    def on_train_batch_end(self, batch, logs=None):
        self._pruning.conditional_mask_update(self._step(), self._writer)
        if logs is not None:
            logs['sparsity'] = self._pruning.model_sparsity.read_value()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs['sparsity'] = float(self._pruning.model_sparsity.numpy())
        if self._checkpoints is not None:
            self._checkpoints.save()

    def on_train_end(self, logs=None):
        if self._writer is None:
            return
        with self._writer.as_default():
            self._pruning.add_final_summaries(self._step(), histograms=True)
        self._writer.flush()
