"""contrib's masked layer classes, `MaskedConv2D` and `MaskedFullyConnected`.

The port of `tensorflow.contrib.model_pruning.python.layers.core_layers`
(TF 1.15): the same classes, constructor arguments, variable names (`kernel`,
`bias`, `mask`, `threshold`), masked kernel op (`.../weights/masked_weight`)
and collections, which `tf_prune.compat.v1.pruning` reads.

contrib built these layers on TF1's `tf.layers.Layer`. With Keras 3 that
class is gone from TF 2.21's public API (`tf.compat.v1.layers.Layer` needs
tf_keras), so `_ScopedLayer` below reproduces the part of it the masked
layers rely on, with `tf.compat.v1.variable_scope` and `get_variable`.
"""

import numbers
import re

import tensorflow as tf

v1 = tf.compat.v1

MASK_COLLECTION = 'masks'
THRESHOLD_COLLECTION = 'thresholds'
MASKED_WEIGHT_COLLECTION = 'masked_weights'
WEIGHT_COLLECTION = 'kernel'
# contrib's name: the 'weights' part lets TF1's quantization library
# recognize the masked kernel as a weight to quantize, and strip_pruning_vars
# finds the masked weights by it.
MASKED_WEIGHT_NAME = 'weights/masked_weight'


def _masked_product(mask, weight):
    """`mask * weight` named `MASKED_WEIGHT_NAME`, out of any control flow.

    In graph mode the product is made in the graph itself, outside any while
    loop or function body (dynamic_rnn builds its cell inside its loop), so
    that `get_masked_weights()` can fetch it and strip_pruning_vars can fold
    it. When the outermost context is eager it is made where it is called:
    made eagerly it would be a constant that no mask update reaches.
    """
    with tf.init_scope():
        if not tf.executing_eagerly():
            return tf.multiply(mask, weight, name=MASKED_WEIGHT_NAME)
    return tf.multiply(mask, weight, name=MASKED_WEIGHT_NAME)


def masked_weight(mask, weight, threshold):
    """`mask * weight`, recorded with its mask for `Pruning`.

    The product is named `MASKED_WEIGHT_NAME` in the current name scope. The
    mask, the product, the threshold and the weight go into the four
    collections once per mask: a layer built again on reused variables adds
    nothing, so the collections stay aligned and hold no duplicates.

    Args:
      mask: the mask variable, of the weight's shape.
      weight: the weight variable.
      threshold: the scalar threshold variable of the mask.

    Returns:
      The masked weight tensor.
    """
    product = _masked_product(mask, weight)
    if not any(known is mask for known in v1.get_collection(MASK_COLLECTION)):
        v1.add_to_collection(MASK_COLLECTION, mask)
        v1.add_to_collection(MASKED_WEIGHT_COLLECTION, product)
        v1.add_to_collection(THRESHOLD_COLLECTION, threshold)
        v1.add_to_collection(WEIGHT_COLLECTION, weight)
    return product


def _snake_case(class_name):
    """TF1's default layer name of a class: MaskedConv2D -> masked_conv2d."""
    words = re.sub(r'(.)([A-Z][a-z0-9]+)', r'\1_\2', class_name)
    snake = re.sub(r'([a-z])([A-Z])', r'\1_\2', words).lower()
    # A leading underscore is not a valid scope name.
    return 'private' + snake if snake.startswith('_') else snake


class _ScopedLayer:
    """The part of TF1's `tf.layers.Layer` contrib's masked layers relied on.

    The first call opens the layer's variable scope in the scope current at
    that call: a fresh one named after the layer (`masked_conv2d`,
    `masked_conv2d_1`, ...), the `scope` given to the call, or, with `reuse`,
    the scope of that exact name. `build` creates the variables there with
    `tf.compat.v1.get_variable`, so the scope's reuse, custom getter and
    partitioner apply and regularizer losses go to
    `GraphKeys.REGULARIZATION_LOSSES`. Later calls reuse the variables and put
    their ops in the same name scope. Subclasses define `build(input_shape)`
    and `call(inputs)`.

    Args:
      trainable: whether the trainable variables go to
        `GraphKeys.TRAINABLE_VARIABLES`.
      name: the layer's name, the default name of its variable scope
        (default: the class name in snake case).
      dtype: the variables' dtype (default: that of the first inputs).
      activity_regularizer: a function of the outputs whose value, divided by
        the batch size, is added to `GraphKeys.REGULARIZATION_LOSSES`.
      reuse: whether to reuse the variables of the scope named `name`.
    """

    def __init__(self, trainable=True, name=None, dtype=None,
                 activity_regularizer=None, reuse=None):
        self.trainable = trainable
        self._name = name or _snake_case(type(self).__name__)
        self._dtype = tf.as_dtype(dtype) if dtype is not None else None
        self.activity_regularizer = activity_regularizer
        self._reuse = reuse
        self._scope = None
        self._variables = []
        self.built = False
        # Set by subclasses: the rank inputs must have, or at least have.
        self._input_rank = None
        self._min_input_rank = None

    @property
    def name(self):
        """The layer's name."""
        return self._name

    @property
    def dtype(self):
        """The variables' dtype, None until known."""
        return self._dtype

    @property
    def scope_name(self):
        """The name of the layer's variable scope.

        Raises:
          ValueError: the layer has not been called yet.
        """
        if self._scope is None:
            raise ValueError(f'Layer {self.name} has no scope before its '
                             'first call; call it on inputs first.')
        return self._scope.name

    @property
    def variables(self):
        """The layer's variables, in the order they were created."""
        return [variable for variable, _ in self._variables]

    @property
    def trainable_variables(self):
        """The trainable variables (none when the layer is not trainable)."""
        if not self.trainable:
            return []
        return [variable for variable, trainable in self._variables
                if trainable]

    @property
    def non_trainable_variables(self):
        """The variables that are not in `trainable_variables`."""
        trainable = self.trainable_variables
        return [variable for variable in self.variables
                if not any(variable is known for known in trainable)]

    def add_weight(self, name, shape, initializer=None, regularizer=None,
                   trainable=True):
        """Creates, or under reuse gets, `<scope>/<name>`; for `build`.

        Args:
          name: the variable's name in the layer's scope.
          shape: its shape.
          initializer: its initializer (default: get_variable's).
          regularizer: a function of the variable whose value is added to
            `GraphKeys.REGULARIZATION_LOSSES` when the variable is created.
          trainable: whether it is trained (if the layer is trainable).

        Returns:
          The variable.
        """
        trainable = trainable and self.trainable
        variable = v1.get_variable(
            name, shape=shape, dtype=self.dtype, initializer=initializer,
            regularizer=regularizer, trainable=trainable)
        self._variables.append((variable, trainable))
        return variable

    def __call__(self, inputs, scope=None):
        """Builds the layer on its first call, then applies it to `inputs`.

        Args:
          inputs: the input tensor (or a value convertible to one).
          scope: on the first call, a variable scope (or its name) to create
            the variables in instead of the layer's own.

        Returns:
          The output tensor.
        """
        self._set_scope(scope)
        reuse = True if self.built else self._reuse
        with v1.variable_scope(self._scope, reuse=reuse,
                               auxiliary_name_scope=False):
            with v1.name_scope(self._scope.original_name_scope):
                inputs = self._convert_inputs(inputs)
                if not self.built:
                    self.build(inputs.shape)
                    self.built = True
                outputs = self.call(inputs)
                if self.activity_regularizer is not None:
                    self._add_activity_loss(outputs)
        return outputs

    def apply(self, inputs, scope=None):
        """TF1's alias of `__call__`."""
        return self(inputs, scope=scope)

    def _set_scope(self, scope):
        """Opens the layer's variable scope once, as TF1's layers did."""
        if self._scope is not None:
            return
        if self._reuse:
            with v1.variable_scope(
                    scope if scope is not None else self._name) as captured:
                self._scope = captured
        else:
            with v1.variable_scope(scope, default_name=self._name) as captured:
                self._scope = captured

    def _convert_inputs(self, inputs):
        """`inputs` as a tensor of the layer's dtype (set by the first one).

        Args:
          inputs: the inputs of a call.

        Returns:
          The input tensor.

        Raises:
          ValueError: the inputs' rank is not one the layer takes.
        """
        inputs = tf.convert_to_tensor(inputs, dtype=self._dtype)
        if self._dtype is None:
            self._dtype = inputs.dtype.base_dtype
        rank = inputs.shape.rank
        if self._input_rank is not None and rank != self._input_rank:
            raise ValueError(
                f'Layer {self.name} takes inputs of rank {self._input_rank}, '
                f'got shape {inputs.shape}; pass a rank-{self._input_rank} '
                'tensor.')
        if self._min_input_rank is not None and (
                rank is None or rank < self._min_input_rank):
            raise ValueError(
                f'Layer {self.name} takes inputs of rank '
                f'{self._min_input_rank} or more, got shape {inputs.shape}; '
                'add the missing dimensions.')
        return inputs

    def _add_activity_loss(self, outputs):
        """Adds the activity regularizer's loss per example, as TF 1.15 did."""
        with v1.name_scope('ActivityRegularizer'):
            loss = self.activity_regularizer(outputs)
            batch_size = tf.cast(tf.shape(outputs)[0], loss.dtype)
            v1.add_to_collection(v1.GraphKeys.REGULARIZATION_LOSSES,
                                 loss / batch_size)


def _normalize_tuple(value, rank, argument):
    """An int or `rank` ints as a tuple of `rank` ints.

    Args:
      value: an int, or a sequence of `rank` ints.
      rank: the length of the tuple.
      argument: the argument's name, for the error.

    Returns:
      The tuple.

    Raises:
      ValueError: `value` is neither.
    """
    if isinstance(value, numbers.Integral):
        return (int(value),) * rank
    values = tuple(value)
    if len(values) != rank or not all(
            isinstance(v, numbers.Integral) for v in values):
        raise ValueError(f'{argument} must be an int or {rank} ints, got '
                         f'{value!r}; pass e.g. {(3,) * rank}.')
    return tuple(int(v) for v in values)


def _normalize_choice(value, choices, argument):
    """`value` lowercased, checked against `choices`.

    Args:
      value: the string given.
      choices: the lowercase strings allowed.
      argument: the argument's name, for the error.

    Returns:
      `value` in lowercase.

    Raises:
      ValueError: `value` is not one of `choices` (in any case).
    """
    normalized = str(value).lower()
    if normalized not in choices:
        raise ValueError(f'{argument} must be one of {choices}, got '
                         f'{value!r}.')
    return normalized


class _MaskedConv(_ScopedLayer):
    """Abstract N-D convolution layer whose kernel is masked.

    The kernel is multiplied by a `mask` variable (ones, not trainable) of its
    shape; the product, named `MASKED_WEIGHT_NAME`, is what the inputs are
    convolved (cross-correlated) with. A scalar `threshold` variable goes with
    the mask; `Pruning` updates both. If `use_bias`, a bias vector is added to
    the outputs; if `activation` is not None, it is applied to them.

    Args:
      rank: the rank of the convolution, e.g. 2 for a 2-D convolution.
      filters: the number of output filters.
      kernel_size: an int or `rank` ints, the convolution window.
      strides: an int or `rank` ints. Strides other than 1 do not go with a
        `dilation_rate` other than 1.
      padding: 'valid' or 'same' (in any case).
      data_format: 'channels_last' (inputs `(batch, ..., channels)`) or
        'channels_first' (inputs `(batch, channels, ...)`).
      dilation_rate: an int or `rank` ints, the rate of dilated convolution.
      activation: the activation function, None for a linear layer.
      use_bias: whether the layer adds a bias.
      kernel_initializer: the kernel's initializer (default: get_variable's,
        Glorot uniform).
      bias_initializer: the bias' initializer.
      kernel_regularizer: a regularizer function of the kernel.
      bias_regularizer: a regularizer function of the bias.
      activity_regularizer: a regularizer function of the outputs.
      trainable: whether the kernel and bias go to
        `GraphKeys.TRAINABLE_VARIABLES`.
      name: the layer's name.
      **kwargs: `dtype` and `reuse`, as `_ScopedLayer` takes them.

    Raises:
      ValueError: a bad `kernel_size`, `strides`, `dilation_rate`, `padding`
        or `data_format`.
    """

    def __init__(self,
                 rank,
                 filters,
                 kernel_size,
                 strides=1,
                 padding='valid',
                 data_format='channels_last',
                 dilation_rate=1,
                 activation=None,
                 use_bias=True,
                 kernel_initializer=None,
                 bias_initializer=v1.zeros_initializer(),
                 kernel_regularizer=None,
                 bias_regularizer=None,
                 activity_regularizer=None,
                 trainable=True,
                 name=None,
                 **kwargs):
        super().__init__(trainable=trainable, name=name,
                         activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self.filters = filters
        self.kernel_size = _normalize_tuple(kernel_size, rank, 'kernel_size')
        self.strides = _normalize_tuple(strides, rank, 'strides')
        self.padding = _normalize_choice(padding, ('valid', 'same'),
                                         'padding')
        self.data_format = _normalize_choice(
            data_format, ('channels_last', 'channels_first'), 'data_format')
        self.dilation_rate = _normalize_tuple(dilation_rate, rank,
                                              'dilation_rate')
        self.activation = activation
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self._input_rank = rank + 2

    def build(self, input_shape):
        """Creates `mask`, `kernel`, `threshold` and `bias`, as contrib did.

        Args:
          input_shape: the shape of the first inputs.

        Raises:
          ValueError: the channel dimension of the inputs is not known.
        """
        channel_axis = 1 if self.data_format == 'channels_first' else -1
        input_dim = tf.compat.dimension_value(input_shape[channel_axis])
        if input_dim is None:
            raise ValueError(f'Layer {self.name} needs the channel dimension '
                             f'of its inputs, got shape {input_shape}; set it '
                             'statically.')
        kernel_shape = self.kernel_size + (input_dim, self.filters)
        self.mask = self.add_weight('mask', kernel_shape,
                                    initializer=v1.ones_initializer(),
                                    trainable=False)
        self.kernel = self.add_weight('kernel', kernel_shape,
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.threshold = self.add_weight('threshold', [],
                                         initializer=v1.zeros_initializer(),
                                         trainable=False)
        self.masked_kernel = masked_weight(self.mask, self.kernel,
                                           self.threshold)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight('bias', (self.filters,),
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer)

    def call(self, inputs):
        """Convolves `inputs` with the masked kernel, adds bias, activates.

        Args:
          inputs: a tensor of rank `rank + 2`.

        Returns:
          The output tensor.
        """
        channels_first = self.data_format == 'channels_first'
        spatial = 'DHW'[-self.rank:]
        data_format = ('NC' + spatial) if channels_first else (
            'N' + spatial + 'C')
        outputs = tf.nn.convolution(
            inputs, self.masked_kernel, strides=self.strides,
            padding=self.padding.upper(), data_format=data_format,
            dilations=self.dilation_rate)
        if self.bias is not None:
            outputs = tf.nn.bias_add(
                outputs, self.bias,
                data_format='NC...' if channels_first else 'N...C')
        if self.activation is not None:
            return self.activation(outputs)
        return outputs


class MaskedConv2D(_MaskedConv):
    """2-D convolution layer (e.g. over images) whose kernel is masked.

    See `_MaskedConv`: the kernel, of shape
    `kernel_size + (input channels, filters)`, is multiplied by a `mask` of
    its shape before the convolution.

    Args:
      filters: the number of output filters.
      kernel_size: an int or 2 ints, the height and width of the window.
      strides: an int or 2 ints. Strides other than 1 do not go with a
        `dilation_rate` other than 1.
      padding: 'valid' or 'same' (in any case).
      data_format: 'channels_last' (inputs `(batch, height, width,
        channels)`) or 'channels_first' (`(batch, channels, height, width)`).
      dilation_rate: an int or 2 ints, the rate of dilated convolution.
      activation: the activation function, None for a linear layer.
      use_bias: whether the layer adds a bias.
      kernel_initializer: the kernel's initializer.
      bias_initializer: the bias' initializer.
      kernel_regularizer: a regularizer function of the kernel.
      bias_regularizer: a regularizer function of the bias.
      activity_regularizer: a regularizer function of the outputs.
      trainable: whether the kernel and bias go to
        `GraphKeys.TRAINABLE_VARIABLES`.
      name: the layer's name.
      **kwargs: `dtype` and `reuse`.
    """

    def __init__(self,
                 filters,
                 kernel_size,
                 strides=(1, 1),
                 padding='valid',
                 data_format='channels_last',
                 dilation_rate=(1, 1),
                 activation=None,
                 use_bias=True,
                 kernel_initializer=None,
                 bias_initializer=v1.zeros_initializer(),
                 kernel_regularizer=None,
                 bias_regularizer=None,
                 activity_regularizer=None,
                 trainable=True,
                 name=None,
                 **kwargs):
        super().__init__(
            rank=2,
            filters=filters,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            activity_regularizer=activity_regularizer,
            trainable=trainable,
            name=name,
            **kwargs)


class MaskedFullyConnected(_ScopedLayer):
    """Fully connected layer whose weight matrix is masked.

    Computes `activation(inputs . (mask * kernel) + bias)`; inputs of rank
    more than 2 are contracted on their last axis. `mask` (ones, not
    trainable) has the kernel's shape and a scalar `threshold` goes with it;
    `Pruning` updates both.

    Args:
      units: the number of output units.
      activation: the activation function, None for a linear layer.
      use_bias: whether the layer adds a bias.
      kernel_initializer: the kernel's initializer.
      bias_initializer: the bias' initializer.
      kernel_regularizer: a regularizer function of the kernel.
      bias_regularizer: a regularizer function of the bias.
      activity_regularizer: a regularizer function of the outputs.
      trainable: whether the kernel and bias go to
        `GraphKeys.TRAINABLE_VARIABLES`.
      name: the layer's name; layers of the same name share their variables
        when `reuse` is True.
      **kwargs: `dtype` and `reuse` (whether to reuse the variables of a
        previous layer of the same name).
    """

    def __init__(self,
                 units,
                 activation=None,
                 use_bias=True,
                 kernel_initializer=None,
                 bias_initializer=v1.zeros_initializer(),
                 kernel_regularizer=None,
                 bias_regularizer=None,
                 activity_regularizer=None,
                 trainable=True,
                 name=None,
                 **kwargs):
        super().__init__(trainable=trainable, name=name,
                         activity_regularizer=activity_regularizer, **kwargs)
        self.units = units
        self.activation = activation
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self._min_input_rank = 2

    def build(self, input_shape):
        """Creates `kernel`, `mask`, `threshold` and `bias`, as contrib did.

        Args:
          input_shape: the shape of the first inputs.

        Raises:
          ValueError: the last dimension of the inputs is not known.
        """
        input_dim = tf.compat.dimension_value(input_shape[-1])
        if input_dim is None:
            raise ValueError(f'Layer {self.name} needs the last dimension of '
                             f'its inputs, got shape {input_shape}; set it '
                             'statically.')
        kernel_shape = [input_dim, self.units]
        self.kernel = self.add_weight('kernel', kernel_shape,
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.mask = self.add_weight('mask', kernel_shape,
                                    initializer=v1.ones_initializer(),
                                    trainable=False)
        self.threshold = self.add_weight('threshold', [],
                                         initializer=v1.zeros_initializer(),
                                         trainable=False)
        self.masked_kernel = masked_weight(self.mask, self.kernel,
                                           self.threshold)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight('bias', [self.units],
                                        initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer)

    def call(self, inputs):
        """Multiplies `inputs` by the masked kernel, adds bias, activates.

        Args:
          inputs: a tensor of rank 2 or more.

        Returns:
          The output tensor, of the inputs' shape but `units` last.
        """
        shape = inputs.shape.as_list()
        if len(shape) > 2:
            outputs = tf.tensordot(inputs, self.masked_kernel,
                                   [[len(shape) - 1], [0]])
            # tensordot loses the static shape of the leading dimensions.
            outputs.set_shape(shape[:-1] + [self.units])
        else:
            outputs = tf.matmul(inputs, self.masked_kernel)
        if self.bias is not None:
            outputs = tf.nn.bias_add(outputs, self.bias)
        if self.activation is not None:
            return self.activation(outputs)
        return outputs
