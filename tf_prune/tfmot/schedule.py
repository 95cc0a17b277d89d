"""tfmot 0.8.1's pruning schedules: when a wrapper prunes, and how much.

A schedule is called with a wrapper's `pruning_step` (an int64 tensor) and
returns `(should_prune, sparsity)`: a bool tensor, true on the steps of
`[begin_step, end_step]` that are a multiple of `frequency` past
`begin_step`, and the float32 fraction of zeros to prune to. The arithmetic
is tfmot's, op for op, so the values are bit-equal to tfmot's (tested
against traces recorded with tfmot 0.8.1).
"""

import abc

import tensorflow as tf


class PruningSchedule(abc.ABC):
    """The base class of pruning schedules; subclass it for a custom one.

    A subclass implements `__call__(step)` returning `(should_prune,
    sparsity)` tensors and `get_config()`; `_should_prune_in_step`,
    `_validate_step` and `_validate_sparsity` are the helpers tfmot's own
    schedules use, kept under tfmot's names for the schedules users wrote.
    """

    def _should_prune_in_step(self, step, begin_step, end_step, frequency):
        """Whether `step` is a pruning step.

        Args:
          step: the training step, an integer tensor.
          begin_step: the first step that can prune.
          end_step: the last step that can prune; negative for no end.
          frequency: prune every `frequency` steps from `begin_step`.

        Returns:
          A bool tensor.
        """
        in_range = tf.math.logical_and(
            tf.math.greater_equal(step, begin_step),
            tf.math.logical_or(tf.math.less_equal(step, end_step),
                               tf.math.less(end_step, 0)))
        on_turn = tf.math.equal(
            tf.math.floormod(tf.math.subtract(step, begin_step), frequency),
            0)
        return tf.math.logical_and(in_range, on_turn)

    def _validate_step(self, begin_step, end_step, frequency,
                       allow_negative_1):
        """Raises tfmot's ValueError for steps no schedule can use.

        Args:
          begin_step: must be >= 0.
          end_step: >= begin_step, or -1 (no end) when `allow_negative_1`.
          frequency: must be > 0.
          allow_negative_1: whether the schedule can prune without an end.
        """
        if begin_step < 0:
            raise ValueError('begin_step should be >= 0')
        if not allow_negative_1 and end_step == -1:
            raise ValueError('end_step cannot be -1.')
        if end_step != -1:
            if end_step < 0:
                raise ValueError('end_step can be -1 or >= 0')
            if end_step < begin_step:
                raise ValueError(
                    'begin_step should be <= end_step if end_step != -1')
        if frequency <= 0:
            raise ValueError('frequency should be > 0')

    def _validate_sparsity(self, sparsity, variable_name):
        """Raises tfmot's ValueError unless 0 <= sparsity < 1."""
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f'{variable_name} must be in range [0,1)')

    @abc.abstractmethod
    def __call__(self, step):
        """`(should_prune, sparsity)` at `step`: a bool and a float32
        tensor."""

    @abc.abstractmethod
    def get_config(self):
        """`{'class_name': ..., 'config': {constructor arguments}}`."""

    @classmethod
    def from_config(cls, config):
        """The schedule of `config`, the `'config'` part of `get_config()`."""
        return cls(**config)


class ConstantSparsity(PruningSchedule):
    """Prunes to `target_sparsity` on every pruning step.

    Args:
      target_sparsity: the fraction of zeros, in [0, 1).
      begin_step: the first step that can prune (>= 0).
      end_step: the last step that can prune; -1 (the default) prunes to
        the end of training.
      frequency: prune every `frequency` steps from `begin_step` (100).
    """

    def __init__(self, target_sparsity, begin_step, end_step=-1,
                 frequency=100):
        self.target_sparsity = target_sparsity
        self.begin_step = begin_step
        self.end_step = end_step
        self.frequency = frequency
        self._validate_step(begin_step, end_step, frequency, True)
        self._validate_sparsity(target_sparsity, 'target_sparsity')

    def __call__(self, step):
        return (self._should_prune_in_step(step, self.begin_step,
                                           self.end_step, self.frequency),
                tf.constant(self.target_sparsity, dtype=tf.float32))

    def get_config(self):
        return {'class_name': type(self).__name__,
                'config': {'target_sparsity': self.target_sparsity,
                           'begin_step': self.begin_step,
                           'end_step': self.end_step,
                           'frequency': self.frequency}}


class PolynomialDecay(PruningSchedule):
    """Sparsity rising from `initial_sparsity` to `final_sparsity`:
    `final + (initial - final) * (1 - p) ** power`, p the fraction of
    `[begin_step, end_step]` gone by (Zhu and Gupta, arXiv 1710.01878).

    Args:
      initial_sparsity: the sparsity at `begin_step`, in [0, 1).
      final_sparsity: the sparsity from `end_step` on, in [0, 1).
      begin_step: the first step that can prune (>= 0).
      end_step: the last step that can prune (>= begin_step; not -1).
      power: the exponent (3).
      frequency: prune every `frequency` steps from `begin_step` (100).
    """

    def __init__(self, initial_sparsity, final_sparsity, begin_step,
                 end_step, power=3, frequency=100):
        self.initial_sparsity = initial_sparsity
        self.final_sparsity = final_sparsity
        self.power = power
        self.begin_step = begin_step
        self.end_step = end_step
        self.frequency = frequency
        self._validate_step(begin_step, end_step, frequency, False)
        self._validate_sparsity(initial_sparsity, 'initial_sparsity')
        self._validate_sparsity(final_sparsity, 'final_sparsity')

    def __call__(self, step):
        # tfmot's float32 operations in tfmot's order: the Python
        # difference of the sparsities is rounded to float32 once.
        with tf.name_scope('polynomial_decay_pruning_schedule'):
            progress = tf.math.minimum(1.0, tf.math.maximum(0.0, tf.math.divide(
                tf.cast(step - self.begin_step, tf.float32),
                self.end_step - self.begin_step)))
            sparsity = tf.math.add(
                tf.math.multiply(self.initial_sparsity - self.final_sparsity,
                                 tf.math.pow(1 - progress, self.power)),
                self.final_sparsity, name='sparsity')
        return (self._should_prune_in_step(step, self.begin_step,
                                           self.end_step, self.frequency),
                sparsity)

    def get_config(self):
        return {'class_name': type(self).__name__,
                'config': {'initial_sparsity': self.initial_sparsity,
                           'final_sparsity': self.final_sparsity,
                           'power': self.power,
                           'begin_step': self.begin_step,
                           'end_step': self.end_step,
                           'frequency': self.frequency}}
