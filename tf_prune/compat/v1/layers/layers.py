"""contrib's slim-style masked_conv2d and masked_fully_connected functions.

The port of `tensorflow.contrib.model_pruning.python.layers.layers` (TF 1.15),
which branched these functions from `tf.contrib.layers` (slim). The
signatures, default scopes (`Conv`, `Conv_1`, ... and `fully_connected`,
...), variable names (`<scope>/weights`, `<scope>/biases`, `<scope>/mask`,
`<scope>/threshold`, all model variables) and the masked kernel op
(`<scope>/weights/masked_weight`) are contrib's. slim is not in TF 2.21, so
its argument handling is done here; slim's `arg_scope` is not supported.
"""

import numbers

import tensorflow as tf

from tf_prune.compat.v1.layers import core_layers

v1 = tf.compat.v1

# slim's names for the variables TF1 layers call `kernel` and `bias`.
_SLIM_NAMES = {'kernel': 'weights', 'bias': 'biases'}
_DATA_FORMATS = {None: 'channels_last', 'NHWC': 'channels_last',
                 'NCHW': 'channels_first'}


def _model_variable_getter(getter, name, collections=None, **kwargs):
    """Custom getter making a layer's variables slim model variables.

    `.../kernel` and `.../bias` are named `.../weights` and `.../biases`, and
    every variable also goes to `GraphKeys.MODEL_VARIABLES`, as contrib's
    `model_variable` did.

    Args:
      getter: the next getter.
      name: the full name of the variable asked for.
      collections: the collections asked for (default: global variables).
      **kwargs: the other arguments of `get_variable`.

    Returns:
      The variable.
    """
    scope_name, _, short_name = name.rpartition('/')
    short_name = _SLIM_NAMES.get(short_name, short_name)
    name = f'{scope_name}/{short_name}' if scope_name else short_name
    collections = list(dict.fromkeys(
        list(collections or []) + [v1.GraphKeys.GLOBAL_VARIABLES,
                                   v1.GraphKeys.MODEL_VARIABLES]))
    return getter(name, collections=collections, **kwargs)


def _add_to_collections(variable, variables_collections, kind):
    """Adds a variable (each part if partitioned) to the requested collections.

    Args:
      variable: a variable or a partitioned variable.
      variables_collections: a list of collection names for every variable,
        or a dict of such lists keyed by kind; None for none.
      kind: 'weights' or 'biases', the key into a dict.
    """
    if isinstance(variables_collections, dict):
        collections = variables_collections.get(kind) or []
    else:
        collections = variables_collections or []
    # A partitioned variable is not a tf.Variable: it iterates over its parts.
    parts = [variable] if isinstance(variable, tf.Variable) else list(variable)
    for collection in collections:
        for part in parts:
            members = v1.get_collection(collection)
            if not any(part is member for member in members):
                v1.add_to_collection(collection, part)


def _record_variables(layer, variables_collections):
    """Adds the layer's weights and biases to the requested collections.

    Args:
      layer: a built masked layer.
      variables_collections: as `masked_convolution` takes it.
    """
    _add_to_collections(layer.kernel, variables_collections, 'weights')
    if layer.bias is not None:
        _add_to_collections(layer.bias, variables_collections, 'biases')


def _finish(outputs, normalizer_fn, normalizer_params, activation_fn):
    """Applies the optional normalizer, then the optional activation.

    Args:
      outputs: the masked layer's outputs.
      normalizer_fn: a normalization function, or None.
      normalizer_params: its keyword arguments, or None.
      activation_fn: an activation function, or None.

    Returns:
      The final outputs.
    """
    if normalizer_fn is not None:
        outputs = normalizer_fn(outputs, **(normalizer_params or {}))
    if activation_fn is not None:
        outputs = activation_fn(outputs)
    return outputs


def _collect_named_outputs(collections, scope, outputs):
    """Adds `outputs` to `collections`, aliased by its scope name, as slim did.

    Args:
      collections: collection names, or None for none.
      scope: the layer's variable scope.
      outputs: the layer's output tensor.

    Returns:
      `outputs`.
    """
    if collections:
        alias = scope.original_name_scope.rstrip('/')
        outputs.aliases = getattr(outputs, 'aliases', []) + [alias]
        v1.add_to_collections(collections, outputs)
    return outputs


def masked_convolution(inputs,
                       num_outputs,
                       kernel_size,
                       stride=1,
                       padding='SAME',
                       data_format=None,
                       rate=1,
                       activation_fn=tf.nn.relu,
                       normalizer_fn=None,
                       normalizer_params=None,
                       weights_initializer=v1.glorot_uniform_initializer(),
                       weights_regularizer=None,
                       biases_initializer=v1.zeros_initializer(),
                       biases_regularizer=None,
                       reuse=None,
                       variables_collections=None,
                       outputs_collections=None,
                       trainable=True,
                       scope=None):
    """Adds a 2-D convolution with a masked kernel, an optional normalizer.

    Creates `weights` (the kernel), a `mask` of its shape (ones, not
    trainable) and a scalar `threshold`; the inputs are convolved
    (cross-correlated) with `mask * weights`, named
    `<scope>/weights/masked_weight`. If a `normalizer_fn` is given (such as
    batch norm) it is applied next; otherwise, if `biases_initializer` is not
    None, `biases` are created and added. Finally `activation_fn`, if not
    None, is applied. With a `rate` other than 1 the convolution is atrous.

    Args:
      inputs: a rank-4 tensor, `[batch, height, width, channels]`, or
        `[batch, channels, height, width]` with data_format 'NCHW'.
      num_outputs: the number of output filters.
      kernel_size: an int or 2 ints, the height and width of the filters.
      stride: an int or 2 ints. Strides other than 1 do not go with a `rate`
        other than 1.
      padding: 'VALID' or 'SAME'.
      data_format: None or 'NHWC' (channels last) or 'NCHW' (channels
        second).
      rate: an int or 2 ints, the dilation rate of atrous convolution.
      activation_fn: the activation function (default ReLU); None for a
        linear layer.
      normalizer_fn: a normalization function to use instead of biases.
      normalizer_params: keyword arguments of `normalizer_fn`.
      weights_initializer: the initializer of the weights (Glorot uniform,
        contrib's `xavier_initializer()`).
      weights_regularizer: an optional regularizer function of the weights.
      biases_initializer: the initializer of the biases; None for no biases.
      biases_regularizer: an optional regularizer function of the biases.
      reuse: whether to reuse the layer's variables; `scope` must then be
        given.
      variables_collections: a list of collections for the weights and
        biases, or a dict of such lists keyed by 'weights' and 'biases'.
      outputs_collections: collections to add the outputs to.
      trainable: whether the weights and biases go to
        `GraphKeys.TRAINABLE_VARIABLES`.
      scope: the variable scope (default: a new `Conv` scope).

    Returns:
      The output tensor.

    Raises:
      ValueError: `data_format` is not None, 'NHWC' or 'NCHW', or the inputs
        are not of rank 4.
    """
    if data_format not in _DATA_FORMATS:
        raise ValueError(f'Invalid data_format: {data_format!r}; masked '
                         "convolution takes None, 'NHWC' or 'NCHW'.")
    with v1.variable_scope(scope, 'Conv', [inputs], reuse=reuse,
                           custom_getter=_model_variable_getter) as sc:
        inputs = tf.convert_to_tensor(inputs)
        input_rank = inputs.shape.rank
        if input_rank != 4:
            raise ValueError(
                'Sparse Convolution not supported for input with rank '
                f'{input_rank}: masked_conv2d takes rank-4 inputs, '
                '[batch, height, width, channels].')
        layer = core_layers.MaskedConv2D(
            filters=num_outputs,
            kernel_size=kernel_size,
            strides=stride,
            padding=padding,
            data_format=_DATA_FORMATS[data_format],
            dilation_rate=rate,
            activation=None,
            use_bias=normalizer_fn is None and biases_initializer is not None,
            kernel_initializer=weights_initializer,
            bias_initializer=biases_initializer,
            kernel_regularizer=weights_regularizer,
            bias_regularizer=biases_regularizer,
            activity_regularizer=None,
            trainable=trainable,
            name=sc.name,
            dtype=inputs.dtype.base_dtype,
            reuse=reuse)
        outputs = layer(inputs, scope=sc)
        _record_variables(layer, variables_collections)
        outputs = _finish(outputs, normalizer_fn, normalizer_params,
                          activation_fn)
        return _collect_named_outputs(outputs_collections, sc, outputs)


masked_conv2d = masked_convolution


def masked_fully_connected(
        inputs,
        num_outputs,
        activation_fn=tf.nn.relu,
        normalizer_fn=None,
        normalizer_params=None,
        weights_initializer=v1.glorot_uniform_initializer(),
        weights_regularizer=None,
        biases_initializer=v1.zeros_initializer(),
        biases_regularizer=None,
        reuse=None,
        variables_collections=None,
        outputs_collections=None,
        trainable=True,
        scope=None):
    """Adds a fully connected layer whose weight matrix is masked.

    Creates `weights`, a `mask` of its shape (ones, not trainable) and a
    scalar `threshold`; the inputs are multiplied by `mask * weights`, named
    `<scope>/weights/masked_weight` (inputs of rank more than 2 are
    contracted on their last axis). If a `normalizer_fn` is given it is
    applied next; otherwise, if `biases_initializer` is not None, `biases`
    are created and added. Finally `activation_fn`, if not None, is applied.

    Args:
      inputs: a tensor of rank 2 or more with a known last dimension, e.g.
        `[batch_size, depth]`.
      num_outputs: the number of output units.
      activation_fn: the activation function (default ReLU); None for a
        linear layer.
      normalizer_fn: a normalization function to use instead of biases.
      normalizer_params: keyword arguments of `normalizer_fn`.
      weights_initializer: the initializer of the weights (Glorot uniform,
        contrib's `xavier_initializer()`).
      weights_regularizer: an optional regularizer function of the weights.
      biases_initializer: the initializer of the biases; None for no biases.
      biases_regularizer: an optional regularizer function of the biases.
      reuse: whether to reuse the layer's variables; `scope` must then be
        given.
      variables_collections: a list of collections for the weights and
        biases, or a dict of such lists keyed by 'weights' and 'biases'.
      outputs_collections: collections to add the outputs to.
      trainable: whether the weights and biases go to
        `GraphKeys.TRAINABLE_VARIABLES`.
      scope: the variable scope (default: a new `fully_connected` scope).

    Returns:
      The output tensor.

    Raises:
      ValueError: `num_outputs` is not an int, the inputs have rank less than
        2 or an unknown last dimension.
    """
    if isinstance(num_outputs, bool) or not isinstance(
            num_outputs, numbers.Integral):
        raise ValueError(f'num_outputs should be int or long, got '
                         f'{num_outputs!r}; pass the number of output units.')
    with v1.variable_scope(scope, 'fully_connected', [inputs], reuse=reuse,
                           custom_getter=_model_variable_getter) as sc:
        inputs = tf.convert_to_tensor(inputs)
        layer = core_layers.MaskedFullyConnected(
            units=int(num_outputs),
            activation=None,
            use_bias=normalizer_fn is None and biases_initializer is not None,
            kernel_initializer=weights_initializer,
            bias_initializer=biases_initializer,
            kernel_regularizer=weights_regularizer,
            bias_regularizer=biases_regularizer,
            activity_regularizer=None,
            trainable=trainable,
            name=sc.name,
            dtype=inputs.dtype.base_dtype,
            reuse=reuse)
        outputs = layer(inputs, scope=sc)
        _record_variables(layer, variables_collections)
        outputs = _finish(outputs, normalizer_fn, normalizer_params,
                          activation_fn)
        return _collect_named_outputs(outputs_collections, sc, outputs)
