"""`PruneWrapper`: a Keras layer wrapper that computes with `mask * weight`.

contrib replaced each pruned layer by a masked twin (`MaskedConv2D`, ...).
Keras 3 lets one wrapper serve every layer: the wrapped layer's `call` runs
inside a `keras.StatelessScope` that maps each pruned weight to
`weight * mask`, so every read of the weight, in any layer code, sees the
masked value. Pruning never writes to the weights; masked entries get a zero
gradient, as in contrib (an optimizer with momentum, such as Adam, may still
move them a little).
"""

import contextlib
import dataclasses
import weakref

import absl.logging as logging
import keras
import tensorflow as tf

from tf_prune.core import hparams as hparams_lib
from tf_prune.keras import _internals

# Layer classes and the names of their pruned weights. Biases and
# normalization weights are never pruned.
_KERNEL_LAYERS = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)
_WEIGHT_NAMES = (
    ((keras.layers.SeparableConv1D, keras.layers.SeparableConv2D),
     ('depthwise_kernel', 'pointwise_kernel')),
    (_KERNEL_LAYERS, ('kernel',)),
    ((keras.layers.Embedding,), ('embeddings',)),
    ((keras.layers.SimpleRNNCell, keras.layers.GRUCell, keras.layers.LSTMCell),
     ('kernel', 'recurrent_kernel')),
)

# Layers whose weights are all of the kinds that are never pruned.
_DENSE_BY_DESIGN = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.RMSNormalization,
)


def custom_prunable_weights(layer):
    """The layer's own `get_prunable_weights` method, or None.

    A method tf_prune derived from what it knows of the layer (the tfmot
    facade adds one to the layers it wraps, as tfmot did) is not the
    layer's own, and is ignored.
    """
    method = getattr(layer, 'get_prunable_weights', None)
    if method is None or getattr(method, 'derived_by_tf_prune', False):
        return None
    return method


def _own_weight(layer, name):
    matches = [v for v in layer.weights if v.name == name]
    if len(matches) != 1:
        raise ValueError(
            f'Layer {layer.name} ({type(layer).__name__}) has '
            f'{len(matches)} weights named {name!r}; expected one')
    return matches[0]


def _holders(layer, prefix=''):
    """Where `layer` keeps the weights pruning masks.

    Returns:
      A list of `(prefix, holder)`, one per (sub)layer holding pruned weights
      directly, the prefix naming the sublayer within `layer` ('' for layer
      itself and for the cell of an RNN or the layer of a TimeDistributed);
      None when tf_prune does not know the layer.
    """
    if custom_prunable_weights(layer) or any(
            isinstance(layer, classes) for classes, _ in _WEIGHT_NAMES):
        return [(prefix, layer)]
    if isinstance(layer, keras.layers.RNN):
        return _holders(layer.cell, prefix)
    if isinstance(layer, keras.layers.TimeDistributed):
        return _holders(layer.layer, prefix)
    if isinstance(layer, keras.layers.StackedRNNCells):
        sublayers = layer.cells
    elif isinstance(layer, keras.layers.Bidirectional):
        sublayers = [layer.forward_layer, layer.backward_layer]
    elif isinstance(layer, keras.layers.MultiHeadAttention):
        # Its dense sublayers are made when it is built.
        sublayers = ([layer.query_dense, layer.key_dense, layer.value_dense,
                      layer.output_dense] if layer.built else [])
    else:
        return None
    holders = []
    for sublayer in sublayers:
        found = _holders(sublayer, f'{prefix}/{sublayer.name}'.lstrip('/'))
        if found is None:
            return None
        holders += found
    return holders


def _held_weights(holder):
    """`(name, variable)` for each weight `holder` itself prunes."""
    custom = custom_prunable_weights(holder)
    if custom:
        weights = list(custom())
        names = [w.name for w in weights]
        if len(set(names)) != len(names):
            raise ValueError(
                f'get_prunable_weights() of layer {holder.name} returns '
                f'weights with repeated names {names}; give each a distinct '
                f'name')
        return list(zip(names, weights))
    names = next(names for classes, names in _WEIGHT_NAMES
                 if isinstance(holder, classes))
    return [(name, _own_weight(holder, name)) for name in names]


def knows_layer(layer):
    """Whether tf_prune knows which weights of `layer` to prune."""
    return _holders(layer) is not None


def prunable_weights(layer):
    """The weights of `layer` that pruning masks, by name within the layer.

    Args:
      layer: a built Keras layer that `knows_layer`.

    Returns:
      A list of `(name, variable)`; the name is the weight's name, prefixed
      by the sublayer holding it where the layer has several (for example
      `forward_lstm/kernel` in a `Bidirectional`, `query/kernel` in a
      `MultiHeadAttention`).
    """
    return [(f'{prefix}/{name}'.lstrip('/'), weight)
            for prefix, holder in _holders(layer)
            for name, weight in _held_weights(holder)]


def is_dense_by_design(layer):
    """Layers whose weights pruning never touches: normalization layers."""
    return isinstance(layer, _DENSE_BY_DESIGN)


@dataclasses.dataclass(frozen=True)
class PrunedWeight:
    """One pruned weight and its pruning state.

    Attributes:
      name: `<layer>/<weight>` (e.g. `conv1/kernel`), the name
        `weight_sparsity_map` and `block_dims_map` patterns are searched in.
      mask_name: contrib's name of the mask, `<layer>/mask` for a layer's only
        pruned weight, else `<layer>/<weight>/mask`.
      threshold_name: likewise, `<layer>/threshold` or
        `<layer>/<weight>/threshold`; None for a channel-masked weight.
      weight: the wrapped layer's variable.
      mask: 0/1, the weight's dtype and shape, not trainable.
      threshold: scalar float32 (float64 for float64 weights); None for a
        channel-masked weight, whose channel group keeps the threshold.
      history: for the gradient prune options, `(gradient, old_weight,
        old_old_weight)`: the decayed, normalized weight-change estimate
        and the weight one and two steps back; else ().
      channel_axis: with `structure=channel`, the axis whose positions are
        channels (the mask is constant along the other axes); else None.
      taylor: with `channel_criterion=taylor`, a float32 vector along
        `channel_axis` accumulating, over the training steps since the last
        mask update, the square of each slice's sum of gradient times
        weight; else None.
    """
    name: str
    mask_name: str
    threshold_name: str
    weight: keras.Variable
    mask: keras.Variable
    threshold: keras.Variable
    history: tuple = ()
    channel_axis: int = None
    taylor: keras.Variable = None

    def state(self):
        """`{name within the layer's scope: variable}` of this weight."""
        prefix = self.mask_name.rsplit('/', 1)[0]
        names = ('mask', 'threshold', 'taylor', 'gradient', 'old_weight',
                 'old_old_weight')
        variables = (self.mask, self.threshold, self.taylor) + self.history
        return {f'{prefix}/{n}': v for n, v in zip(names, variables)
                if v is not None}


@dataclasses.dataclass(frozen=True)
class ChannelState:
    """The pruning state of a channel group, kept by its first producer.

    Attributes:
      name: the producer's layer name, which names the group.
      mask: float32 0/1 vector, one entry per channel of the group that can
        be removed (in the order of the group's channels).
      threshold: float32 scalar, the threshold of the last mask update.
    """
    name: str
    mask: keras.Variable
    threshold: keras.Variable

    def state(self):
        """`{name within the layer's scope: variable}` of the group."""
        return {f'{self.name}/channels/mask': self.mask,
                f'{self.name}/channels/threshold': self.threshold}


@contextlib.contextmanager
def _name_scopes(path):
    with contextlib.ExitStack() as stack:
        for part in path.split('/') if path else ():
            stack.enter_context(keras.name_scope(part))
        yield


def state_variable(name, shape, dtype, initializer):
    # Updated only by the controller, outside the replicated step; under a
    # distribution strategy any replica's copy is the value.
    return keras.Variable(initializer=initializer, shape=shape, dtype=dtype,
                          trainable=False, autocast=False,
                          aggregation='only_first_replica', name=name)


@keras.saving.register_keras_serializable(package='tf_prune')
class PruneWrapper(_internals.CheckpointChildren, keras.layers.Wrapper):
    """Prunes a layer's weights with contrib's masks.

    For each pruned weight (see `prunable_weights`) the wrapper owns a `mask`
    (ones at first) and a scalar `threshold` (0), plus one int32
    `last_mask_update_step` (0). The wrapped layer computes with
    `mask * weight`. `tf_prune.Pruning` (or `PruningCallback`) updates the
    masks; `tf_prune.prune` wraps a model's layers.

    With `channels` (`structure=channel`, set up by `tf_prune.prune`) the
    wrapper masks the weight slices of whole channels instead: the weights
    `channels['weights']` names, each with a mask of its shape that is
    constant off its channel axis and no threshold of its own; the first
    producer of a channel group also keeps the group's `ChannelState`.

    The wrapper takes the wrapped layer's name, so masks are named as in
    contrib (`conv1/mask`, `conv1/threshold`).

    Args:
      layer: the Keras layer to prune.
      prune_option: how weights are scored (`prune_option` hparam):
        'weight' (contrib's |w|), 'first_order_gradient' or
        'second_order_gradient' (|w| times a weight-change estimate, which
        needs three more variables per pruned weight).
      channels: None (contrib's weight masks), or a dict for channel masks:
        `'weights'` `{weight attribute name: channel axis}`, the slices to
        mask; `'group_size'` the number of removable channels of the group
        this layer is the first producer of (0 if none); `'taylor'` whether
        to accumulate the taylor criterion; `'bn_l1_penalty'` the L1 penalty
        on the (masked) `gamma` added as a loss while training.
      **kwargs: base `Layer` arguments (name, dtype, trainable).

    Raises:
      ValueError: tf_prune does not know which weights of `layer` to prune
        (give the layer a `get_prunable_weights()` method), an unknown
        `prune_option`, or `channels` naming no weight.
    """

    # Whether the wrapper updates its own masks as it trains (the tfmot
    # facade's does); a `Pruning` controller refuses such wrappers.
    self_updating = False

    def __init__(self, layer, prune_option='weight', channels=None,
                 **kwargs):
        if channels is None:
            self._check_layer(layer)
        hparams_lib.check_choice('prune_option', prune_option,
                                 hparams_lib.PRUNE_OPTIONS)
        if channels is not None:
            channels = _checked_channels(layer, channels)
        kwargs.setdefault('name', layer.name)
        kwargs.setdefault('dtype', layer.dtype_policy)
        kwargs.setdefault('trainable', layer.trainable)
        # Autocasting would hand the masks and weights to `call` in the
        # compute dtype; the wrapped layer casts them itself.
        kwargs['autocast'] = False
        super().__init__(layer, **kwargs)
        _internals.copy_input_shape_argument(layer, self)
        self.prune_option = prune_option
        self.channels = channels
        self.supports_masking = layer.supports_masking
        # Set by `Pruning`; training an uncontrolled wrapper logs a warning.
        self.controlled = False
        self._pruned = ()
        self._channel_state = None

    @staticmethod
    def _check_layer(layer):
        """Raises unless the wrapper knows which weights of `layer` to prune."""
        if not knows_layer(layer):
            raise ValueError(
                f'PruneWrapper cannot prune layer {layer.name} '
                f'({type(layer).__name__}): tf_prune does not know its '
                f'weights; give the layer a get_prunable_weights() method '
                f'that returns the variables to prune')

    def _weights_to_prune(self):
        """`(name, variable)` of each weight of the built layer to mask."""
        return prunable_weights(self.layer)

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        if self.channels is None:
            self._pruned = tuple(self._build_weight_masks())
        else:
            self._pruned = tuple(self._build_channel_masks())
        # Keras saves this list in `.keras` files; `checkpoint_children`
        # names its variables for TF checkpoints, which skip Keras's lists.
        self._state = [v for name, v in self._named_state()]
        self.last_mask_update_step = state_variable(
            'last_mask_update_step', (), 'int32', 'zeros')

    def _threshold_dtype(self, weight):
        return 'float64' if weight.dtype == 'float64' else 'float32'

    def _build_weight_masks(self):
        named_weights = self._weights_to_prune()
        single = len(named_weights) == 1
        for weight_name, weight in named_weights:
            scope = '' if single else weight_name
            prefix = f'{self.name}/{scope}'.rstrip('/')
            threshold_dtype = self._threshold_dtype(weight)
            with _name_scopes(scope):
                mask = state_variable('mask', weight.shape, weight.dtype,
                                       'ones')
                threshold = state_variable('threshold', (), threshold_dtype,
                                            'zeros')
                history = ()
                if self.prune_option != 'weight':
                    # A copy: given the variable itself, Keras would alias it.
                    snapshot = keras.ops.copy(weight.value)
                    history = (
                        state_variable('gradient', weight.shape,
                                        weight.dtype, 'zeros'),
                        state_variable('old_weight', weight.shape,
                                        weight.dtype, snapshot),
                        state_variable('old_old_weight', weight.shape,
                                        weight.dtype, snapshot))
            yield PrunedWeight(
                name=f'{self.name}/{weight_name}',
                mask_name=f'{prefix}/mask',
                threshold_name=f'{prefix}/threshold',
                weight=weight, mask=mask, threshold=threshold,
                history=history)

    def _build_channel_masks(self):
        for weight_name, axis in self.channels['weights'].items():
            weight = getattr(self.layer, weight_name)
            with _name_scopes(weight_name):
                mask = state_variable('mask', weight.shape, weight.dtype,
                                       'ones')
                taylor = None
                if self.channels['taylor']:
                    taylor = state_variable(
                        'taylor', (weight.shape[axis],), 'float32', 'zeros')
            yield PrunedWeight(
                name=f'{self.name}/{weight_name}',
                mask_name=f'{self.name}/{weight_name}/mask',
                threshold_name=None, weight=weight, mask=mask,
                threshold=None, channel_axis=axis, taylor=taylor)
        size = self.channels['group_size']
        if size:
            with _name_scopes('channels'):
                self._channel_state = ChannelState(
                    self.name,
                    state_variable('mask', (size,), 'float32', 'ones'),
                    state_variable('threshold', (), 'float32', 'zeros'))

    def _named_state(self):
        """`(name within the model's scopes, variable)` of all masks and
        thresholds, in a fixed order."""
        named = [item for p in self._pruned for item in p.state().items()]
        if self._channel_state is not None:
            named += list(self._channel_state.state().items())
        return named

    def state_variables(self):
        """Every variable the wrapper adds to its layer's: masks,
        thresholds, their history and the step of the last update."""
        return [v for _, v in self._named_state()] + [
            self.last_mask_update_step]

    @property
    def pruned_weights(self):
        """The `PrunedWeight`s of this layer (empty before it is built)."""
        return self._pruned

    @property
    def channel_state(self):
        """The `ChannelState` of the group this layer first produces, or
        None."""
        return self._channel_state

    def call(self, inputs, *args, training=None, **kwargs):
        if training is True and not self.controlled:
            _warn_uncontrolled(self)
        masked = [(p.weight, self._masked(p, training)) for p in self._pruned]
        with keras.StatelessScope(state_mapping=masked,
                                  collect_losses=True) as scope:
            given = {id(w): scope.get_current_value(w) for w, _ in masked}
            outputs = self.layer(inputs, *args, training=training, **kwargs)
        # State the layer changed in the scope (random seeds, RNN states, a
        # BatchNormalization's moving statistics) is applied now; `assign`
        # hands it on to an enclosing scope if any.
        for variable in self.layer.variables:
            value = scope.get_current_value(variable)
            if value is not None and value is not given.get(id(variable)):
                variable.assign(value)
        for loss in scope.losses:
            self.add_loss(loss)
        penalty = (self.channels or {}).get('bn_l1_penalty', 0.0)
        if penalty and training:
            gamma = next(value for variable, value in masked
                         if variable is getattr(self.layer, 'gamma', None))
            self.add_loss(penalty * keras.ops.sum(keras.ops.abs(gamma)))
        return outputs

    def compute_output_spec(self, inputs, *args, training=None, **kwargs):
        if self.channels is None:
            # Weight masks wrap any layer, and Keras computes some specs
            # from shapes otherwise than the call makes them
            # (MultiHeadAttention's scores): the masked call is traced.
            return super().compute_output_spec(
                inputs, *args, training=training, **kwargs)
        # Channel masks wrap convolutions, Dense and BatchNormalization,
        # whose specs Keras computes from shapes, and masks change values,
        # not shapes: the layer's own spec, as in the model, saves tracing
        # the masked call (tens of milliseconds a wrapper) when a model is
        # pruned, cloned or loaded. No such spec depends on `training`.
        return self.layer.compute_output_spec(inputs, *args, **kwargs)

    @staticmethod
    def _masked(pruned, training):
        """`mask * weight`; while training with the taylor criterion, its
        gradient also accumulates the criterion."""
        if pruned.taylor is None or training is not True:
            return pruned.weight * pruned.mask
        return _taylor_tap(pruned.weight.value, pruned.mask.value,
                           pruned.taylor, pruned.channel_axis)

    def checkpoint_children(self):
        start = len(self.name) + 1  # names within this layer
        return {name[start:]: variable
                for name, variable in self._named_state()}

    def compute_mask(self, inputs, mask=None):
        return self.layer.compute_mask(inputs, mask)

    def get_build_config(self):
        return self.layer.get_build_config()

    def build_from_config(self, config):
        if config and not self.layer.built:
            self.layer.build_from_config(config)
        self.build()

    def get_config(self):
        config = {**super().get_config(), 'prune_option': self.prune_option}
        if self.channels is not None:
            config['channels'] = self.channels
        return config


_CHANNEL_KEYS = ('weights', 'group_size', 'taylor', 'bn_l1_penalty')


def _checked_channels(layer, channels):
    """`channels` with every key, checked against `layer`."""
    unknown = set(channels) - set(_CHANNEL_KEYS)
    if unknown or not channels.get('weights'):
        raise ValueError(
            f'channels of PruneWrapper {layer.name} must name the weights to '
            f'mask ({{"weights": {{"kernel": 3}}, ...}}; keys '
            f'{", ".join(_CHANNEL_KEYS)}), got {channels}')
    return {'weights': {str(k): int(v) for k, v in channels['weights'].items()},
            'group_size': int(channels.get('group_size', 0)),
            'taylor': bool(channels.get('taylor', False)),
            'bn_l1_penalty': float(channels.get('bn_l1_penalty', 0.0))}


def _taylor_tap(weight, mask, accumulator, axis):
    """`weight * mask`, whose gradient adds to `accumulator` the square of
    each channel slice's sum of gradient times (masked) weight: Molchanov et
    al.'s first-order Taylor estimate of the loss change when the slice
    goes."""

    @tf.custom_gradient
    def masked(value):
        def gradient(upstream):
            upstream = upstream * mask
            other = [a for a in range(len(value.shape)) if a != axis]
            term = tf.reduce_sum(
                tf.cast(upstream * value, tf.float32), axis=other)
            with tf.control_dependencies(
                    [accumulator.assign_add(tf.square(term))]):
                return tf.identity(upstream)
        return value * mask, gradient

    return masked(weight)


def find_wrappers(model):
    """The `PruneWrapper`s in a model or layer, each once, in layer order."""
    found = {}

    def visit(layer):
        if isinstance(layer, PruneWrapper):
            found.setdefault(id(layer), layer)
            return
        for sublayer in _internals.direct_sublayers(layer):
            visit(sublayer)

    visit(model)
    return list(found.values())


# The graphs (traced steps, or eager's global graph) already warned of;
# weak, so a traced step's graph is not kept alive by the warning.
_warned_graphs = weakref.WeakSet()


def _warn_uncontrolled(wrapper):
    """Warns, once per traced step, that a wrapper trains with fixed masks.

    The check runs in the wrapper's own `call`, so it holds for a model
    however it was made: pruned, loaded, cloned or rebuilt.
    """
    graph = tf.compat.v1.get_default_graph()
    if graph in _warned_graphs:
        return
    _warned_graphs.add(graph)
    logging.warning(
        'PruneWrapper %s is trained, but no tf_prune.Pruning updates its '
        'masks, so it stays dense: pass tf_prune.PruningCallback(hparams) to '
        'fit, or call tf_prune.Pruning(hparams, model)'
        '.conditional_mask_update(step) after each step of your loop.',
        wrapper.name)
