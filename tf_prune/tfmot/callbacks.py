"""tfmot 0.8.1's pruning callbacks: `UpdatePruningStep`, `PruningSummaries`."""

import keras
import numpy as np
import tensorflow as tf

from tf_prune.tfmot.wrapper import facade_wrappers


class UpdatePruningStep(keras.callbacks.Callback):
    """Starts the wrappers' step counts and re-masks at each epoch's end.

    As tfmot 0.8.1: at the start of training, wrappers whose `pruning_step`
    is still -1 (never trained) start at 0; each training call then counts
    itself. At the end of every epoch the masks are written into the
    weights again, so a model saved then holds `weight * mask`. Training a
    pruned model without this callback fails with tfmot's message.
    """

    def __init__(self):
        super().__init__()
        self.prunable_layers = []

    def on_train_begin(self, logs=None):
        self.prunable_layers = facade_wrappers(self.model)
        if not self.prunable_layers:
            return
        # A restored model keeps its count; a new one starts at 0.
        if int(self.prunable_layers[0].pruning_step.numpy()) == -1:
            for layer in self.prunable_layers:
                layer.pruning_step.assign(0)

    def on_epoch_end(self, epoch, logs=None):
        for layer in self.prunable_layers:
            layer.apply_masks()


class PruningSummaries(keras.callbacks.TensorBoard):
    """TensorBoard logs plus each mask's sparsity and each threshold.

    As tfmot 0.8.1, the pruning scalars go to `<log_dir>/metrics` at the
    start of every epoch, at the optimizer's step count, tagged
    `<mask variable name>/sparsity` and `<threshold variable name>/threshold`
    with tfmot's variable names (`prune_low_magnitude_dense/mask:0`).
    Unlike tfmot, they are also written at the end of training, so the last
    point is the trained model's state; and a wrapper with several pruned
    weights (an LSTM's kernel and recurrent kernel) gets one series per
    weight (`prune_low_magnitude_lstm/kernel/mask:0/sparsity`, ...) where
    tfmot's masks share one name and only the last one is logged.

    Args:
      log_dir: the TensorBoard directory, a non-empty string.
      update_freq: `keras.callbacks.TensorBoard`'s ('epoch').
      **kwargs: other `keras.callbacks.TensorBoard` arguments.
    """

    def __init__(self, log_dir, update_freq='epoch', **kwargs):
        if not isinstance(log_dir, str) or not log_dir:
            raise ValueError(
                f'`log_dir` must be a non-empty string. You passed '
                f'`log_dir`={log_dir}.')
        super().__init__(log_dir=log_dir, update_freq=update_freq, **kwargs)
        self._pruning_writer = None

    def _pruning_logs(self):
        """tfmot's logs: every mask's sparsity, then every threshold."""
        pruned = [p for layer in facade_wrappers(self.model)
                  for p in layer.pruned_weights]
        logs = {f'{p.mask_name}:0/sparsity': 1 - np.mean(p.mask.numpy())
                for p in pruned}
        logs.update({f'{p.threshold_name}:0/threshold': p.threshold.numpy()
                     for p in pruned})
        return logs

    def _write_pruning_logs(self):
        if self._pruning_writer is None:
            self._pruning_writer = tf.summary.create_file_writer(
                f'{self.log_dir}/metrics')
        step = int(self.model.optimizer.iterations.numpy())
        with self._pruning_writer.as_default():
            for name, value in self._pruning_logs().items():
                tf.summary.scalar(name, value, step=step)
        self._pruning_writer.flush()

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._write_pruning_logs()

    def on_train_end(self, logs=None):
        self._write_pruning_logs()
        self._pruning_writer.close()
        self._pruning_writer = None
        super().on_train_end(logs)

