"""`PruneLowMagnitude`: tfmot 0.8.1's pruning wrapper, on `PruneWrapper`.

tfmot's wrapper differs from contrib's in when and where masks apply, and
the facade follows tfmot:
- it counts its own training calls in `pruning_step` (int64, -1 until
  `UpdatePruningStep` sets it to 0 at the start of training); a training
  call adds one, then, when the schedule says so at that step, sets each
  mask from the weight as it is (top-k of |w| with no threshold decay:
  `update_mask` with `threshold_decay=0`; or blocks; or the m-by-n
  pattern, set once, at step 1);
- every call, in training or not, then writes `weight * mask` back into
  the weight, and the layer computes with the weight itself: a masked
  weight is zero in `layer.kernel`, and still gets a gradient, so it may
  grow back before the next call masks it again.
"""

import keras
import tensorflow as tf

from tf_prune.core import masking
from tf_prune.keras.wrapper import PruneWrapper
from tf_prune.keras.wrapper import find_wrappers
from tf_prune.keras.wrapper import state_variable
from tf_prune.tfmot import registry
from tf_prune.tfmot import schedule as schedule_lib

MISSING_CALLBACK_MESSAGE = (
    'Prune() wrapper requires the UpdatePruningStep callback to be provided '
    'during training. Please add it as a callback to your model.fit call.')
# tfmot's threshold for m-by-n masks, which have none.
_M_BY_N_THRESHOLD = 999.0


def _two_ints(value, name):
    """tfmot's check of `sparsity_m_by_n`: a tuple of 2 integers."""
    message = (f'The {name} argument must be a tuple/list of 2 integers.'
               f'received: {value}.')
    try:
        value = tuple(value)
    except TypeError:
        raise ValueError(message) from None
    if len(value) != 2:
        raise ValueError(message)
    for item in value:
        if not isinstance(item, int):
            raise ValueError(
                f'{message[:-1]} including element {item} of type '
                f'{type(item)}.')
    return value


def _schedule_from_config(config):
    """A schedule from its `get_config()`: tfmot's two, or a registered or
    in-scope custom `PruningSchedule` subclass."""
    known = {'ConstantSparsity': schedule_lib.ConstantSparsity,
             'PolynomialDecay': schedule_lib.PolynomialDecay}
    name = config['class_name']
    cls = known.get(name) or keras.saving.get_registered_object(name)
    if cls is None:
        raise ValueError(
            f'Unknown pruning schedule {name!r}; register it with '
            f'@keras.saving.register_keras_serializable() or load the model '
            f'inside keras.saving.custom_object_scope({{{name!r}: {name}}})')
    return cls.from_config(config['config'])


@keras.saving.register_keras_serializable(package='tf_prune')
class PruneLowMagnitude(PruneWrapper):
    """Prunes a layer's weights by magnitude, as tfmot 0.8.1 does.

    Args:
      layer: the Keras layer to prune: one tfmot's registry knows, one with
        `get_prunable_weights()`, or (beyond tfmot) one `tf_prune.prune`
        knows.
      pruning_schedule: a `PruningSchedule` (tfmot's default:
        `ConstantSparsity(0.5, 0)`).
      block_size: (height, width) of the blocks pruned together in rank-2
        weights; (1, 1) prunes single weights.
      block_pooling_type: 'AVG' or 'MAX', how a block's |w| is pooled.
      sparsity_m_by_n: None, or `(m, n)`: m zeros in every n consecutive
        weights along the input-channel axis (the second to last axis of
        Dense and Conv kernels), set once, at the first training step.
      **kwargs: base layer arguments; the name is always
        `prune_low_magnitude_<layer name>`, as in tfmot.

    Raises:
      ValueError: tfmot's errors for an unknown pooling type, a non-layer,
        an unsupported layer or a bad `sparsity_m_by_n` (also m >= n, which
        tfmot finds only in training); when built, blocks on a weight that
        is not rank 2, or m-by-n on a weight of rank below 2.
    """

    self_updating = True

    def __init__(self, layer, pruning_schedule=None, block_size=(1, 1),
                 block_pooling_type='AVG', sparsity_m_by_n=None, **kwargs):
        if pruning_schedule is None:
            pruning_schedule = schedule_lib.ConstantSparsity(0.5, 0)
        if not isinstance(pruning_schedule, schedule_lib.PruningSchedule):
            raise ValueError(
                f'pruning_schedule must be a PruningSchedule (ConstantSparsity, '
                f'PolynomialDecay or a subclass), got '
                f'{type(pruning_schedule).__name__}')
        if block_pooling_type not in ('AVG', 'MAX'):
            raise ValueError(
                f"Unsupported pooling type '{block_pooling_type}'. Should be "
                f"'AVG' or 'MAX'.")
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f'Please initialize `Prune` layer with a `Layer` instance. '
                f'You passed: {layer}')
        self.pruning_schedule = pruning_schedule
        self.block_size = tuple(block_size)
        self.block_pooling_type = block_pooling_type
        self.sparsity_m_by_n = None
        if sparsity_m_by_n:
            self.sparsity_m_by_n = _two_ints(sparsity_m_by_n,
                                             'sparsity_m_by_n')
            zeros, group = self.sparsity_m_by_n
            if not 0 < zeros < group:
                # tfmot asserts m < n only when the first mask is set.
                raise ValueError(
                    f'sparsity_m_by_n={self.sparsity_m_by_n} must be (m, n) '
                    f'with 0 < m < n: m zeros in every n consecutive '
                    f'weights, e.g. (2, 4)')
        kwargs['name'] = f'prune_low_magnitude_{layer.name}'
        super().__init__(layer, **kwargs)
        registry.give_get_prunable_weights(layer)
        self.pruning_step = None

    @staticmethod
    def _check_layer(layer):
        if not registry.supports(layer):
            raise ValueError(
                registry.UNSUPPORTED_MESSAGE.format(layer=type(layer)))

    def _weights_to_prune(self):
        return registry.prunable_weights(self.layer)

    def _threshold_dtype(self, weight):
        return weight.dtype  # tfmot's threshold has the weight's dtype

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        self._pruned = tuple(self._build_weight_masks())
        for pruned in self._pruned:
            self._check_pattern(pruned)
        self._state = [v for _, v in self._named_state()]
        self.pruning_step = state_variable(
            'pruning_step', (), 'int64', keras.initializers.Constant(-1))

    def _check_pattern(self, pruned):
        rank = len(pruned.weight.shape)
        if self.sparsity_m_by_n and rank < 2:
            # tfmot takes rank 2 and 4 only; groups along the input-channel
            # axis exist in every kernel (Conv1D, Conv3D too).
            raise ValueError(
                f'sparsity_m_by_n groups weights along the input-channel '
                f'axis; {pruned.name} has shape {tuple(pruned.weight.shape)}, '
                f'which has none')
        if self.block_size != (1, 1) and rank != 2:
            raise ValueError(
                f'Block Sparsity can only be used for layers which have '
                f'2-dimensional weights ({pruned.name} has shape '
                f'{tuple(pruned.weight.shape)}); use block_size=(1, 1)')

    def state_variables(self):
        return [v for _, v in self._named_state()] + [self.pruning_step]

    @property
    def controlled(self):
        return True  # it updates its own masks

    @controlled.setter
    def controlled(self, value):
        del value  # `PruneWrapper.__init__` sets it; nothing controls this

    def call(self, inputs, *args, training=None, **kwargs):
        if training:
            self.pruning_step.assign_add(1)
            tf.debugging.assert_greater_equal(
                self.pruning_step.value, tf.constant(1, tf.int64),
                message=MISSING_CALLBACK_MESSAGE)
            self.conditional_mask_update()
        self.apply_masks()
        return self.layer(inputs, *args, training=training, **kwargs)

    def _should_update(self, step):
        if self.sparsity_m_by_n:
            return tf.math.equal(step, 1)  # tfmot sets the pattern once
        return self.pruning_schedule(step)[0]

    def _new_mask(self, pruned, step):
        """`(threshold, mask)` of one weight at `step`, as tfmot sets them."""
        weight = pruned.weight.value
        if self.sparsity_m_by_n:
            zeros, group = self.sparsity_m_by_n
            return (tf.constant(_M_BY_N_THRESHOLD, weight.dtype),
                    masking.n_of_m_mask(weight, group - zeros, group,
                                        pruned.name))
        sparsity = self.pruning_schedule(step)[1]
        threshold, mask = masking.update_mask(
            weight, sparsity, block_dims=self.block_size,
            block_pooling_function=self.block_pooling_type, name=pruned.name)
        return tf.cast(threshold, weight.dtype), mask

    def conditional_mask_update(self):
        """Sets the masks when the schedule prunes at `pruning_step`."""
        if not self._pruned:
            return

        def update(assign):
            step = self.pruning_step.value

            def new_masks():
                for pruned in self._pruned:
                    threshold, mask = self._new_mask(pruned, step)
                    assign(pruned.threshold, threshold)
                    assign(pruned.mask, mask)
                return tf.constant(True)

            tf.cond(self._should_update(step), new_masks,
                    lambda: tf.constant(False))

        _once_for_all_replicas(update)

    def apply_masks(self):
        """Writes `weight * mask` into each pruned weight."""

        def write(assign):
            for pruned in self._pruned:
                assign(pruned.weight, pruned.weight * pruned.mask)

        _once_for_all_replicas(write)

    def get_config(self):
        config = keras.layers.Wrapper.get_config(self)
        config.update({
            'pruning_schedule': self.pruning_schedule.get_config(),
            'block_size': self.block_size,
            'block_pooling_type': self.block_pooling_type,
            # tfmot 0.8.1 leaves it out, and loads a 2:4 model as dense.
            'sparsity_m_by_n': self.sparsity_m_by_n,
        })
        config.pop('name', None)  # always derived from the layer's
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config['pruning_schedule'] = _schedule_from_config(
            config['pruning_schedule'])
        config['layer'] = keras.layers.deserialize(
            config['layer'], custom_objects=custom_objects)
        return cls(**config)


def _once_for_all_replicas(update):
    """Runs `update(assign)` once, whatever the distribution strategy.

    Alone, `assign(variable, value)` assigns. In a replica of a
    `tf.distribute` strategy (MirroredStrategy's `fit`), the update moves to
    the cross-replica context, as tfmot's does: it reads the variables once
    (the replicas hold the same values) and writes each replica's copy,
    which an assignment inside `tf.cond` in a replica could not do.

    Args:
      update: a function of `assign`, creating the update's operations.
    """
    if not tf.distribute.has_strategy():
        update(lambda variable, value: variable.assign(value))
        return

    def across(strategy):
        def assign(variable, value):
            strategy.extended.update(
                variable.value, lambda copy, new: copy.assign(new),
                args=(value,))
        update(assign)

    context = tf.distribute.get_replica_context()
    if context is None:  # already cross-replica: a call outside `run`
        across(tf.distribute.get_strategy())
    else:
        context.merge_call(across)


def facade_wrappers(model):
    """The `PruneLowMagnitude` wrappers of a model, in layer order."""
    return [w for w in find_wrappers(model)
            if isinstance(w, PruneLowMagnitude)]
