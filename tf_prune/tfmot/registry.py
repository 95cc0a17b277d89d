"""Which weights of a layer `prune_low_magnitude` prunes.

tfmot 0.8.1 keeps a registry of Keras 2 layer classes: the weights it prunes
for each (`kernel` of Dense and Conv, `embeddings`, the pointwise kernel of
a SeparableConv, the kernels of RNN cells and of MultiHeadAttention's
projections) and the many layers it wraps without pruning anything
(activations, pooling, normalization, DepthwiseConv2D, ...). The facade
follows that registry for the layers tfmot knows, so a migrated model gets
tfmot's masks; a layer with `get_prunable_weights()` (a `PrunableLayer`)
prunes what it returns. Beyond tfmot, the layers tf_prune knows and tfmot
does not (Bidirectional, TimeDistributed, EinsumDense, Conv1DTranspose,
...) prune what `tf_prune.prune` prunes, and a built layer with no
trainable weight is wrapped with nothing to prune.
"""

import keras

from tf_prune.keras import wrapper as wrapper_lib

# Layers wrapped with nothing to prune: tfmot's registry entries with no
# weights, under their Keras 3 classes, and Keras 3's weightless layers.
_NOTHING_PRUNED = (
    keras.layers.Activation, keras.layers.ActivityRegularization,
    keras.layers.Add, keras.layers.AlphaDropout, keras.layers.Average,
    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D, keras.layers.BatchNormalization,
    keras.layers.Concatenate, keras.layers.Cropping1D,
    keras.layers.Cropping2D, keras.layers.Cropping3D, keras.layers.Dot,
    keras.layers.Dropout, keras.layers.ELU, keras.layers.Flatten,
    keras.layers.GaussianDropout, keras.layers.GaussianNoise,
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D, keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D,
    keras.layers.Identity, keras.layers.Lambda,
    keras.layers.LayerNormalization, keras.layers.LeakyReLU,
    keras.layers.Masking, keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
    keras.layers.Maximum, keras.layers.Minimum, keras.layers.Multiply,
    keras.layers.Permute, keras.layers.ReLU, keras.layers.RepeatVector,
    keras.layers.Rescaling, keras.layers.Reshape, keras.layers.Softmax,
    keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D, keras.layers.Subtract,
    keras.layers.UpSampling1D, keras.layers.UpSampling2D,
    keras.layers.UpSampling3D, keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D,
    # tfmot prunes no depthwise kernel (XNNPACK has no sparse depthwise
    # kernels); DepthwiseConv1D, new in Keras 3, is kept alike.
    keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D,
)
_POINTWISE_ONLY = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)

UNSUPPORTED_MESSAGE = (
    'Please initialize `Prune` with a supported layer. Layers should either '
    'be supported by the PruneRegistry (built-in keras layers) or should be '
    'a `PrunableLayer` instance, or should has a customer defined '
    '`get_prunable_weights` method. You passed: {layer}')


def supports(layer):
    """Whether `prune_low_magnitude` can wrap `layer`."""
    return (wrapper_lib.custom_prunable_weights(layer)
            or isinstance(layer, _NOTHING_PRUNED + _POINTWISE_ONLY)
            or wrapper_lib.is_dense_by_design(layer)
            or wrapper_lib.knows_layer(layer)
            or (layer.built and not layer.trainable_weights))


def prunable_weights(layer):
    """The weights of built `layer` that the facade prunes.

    Args:
      layer: a built layer that `supports`.

    Returns:
      A list of `(name within the layer, variable)`.
    """
    if wrapper_lib.custom_prunable_weights(layer):
        return wrapper_lib.prunable_weights(layer)
    if isinstance(layer, _POINTWISE_ONLY):
        return [('pointwise_kernel', layer.pointwise_kernel)]
    if isinstance(layer, _NOTHING_PRUNED) or (
            wrapper_lib.is_dense_by_design(layer)):
        return []
    if wrapper_lib.knows_layer(layer):
        return wrapper_lib.prunable_weights(layer)
    return []


def give_get_prunable_weights(layer):
    """Gives a layer without its own `get_prunable_weights()` one returning
    what the facade prunes, as tfmot's registry did to the layers it
    wrapped (tfmot's examples call `wrapper.layer.get_prunable_weights()`).

    The method is marked as derived, so tf_prune's own pruning of the same
    layer object ignores it.
    """
    if wrapper_lib.custom_prunable_weights(layer):
        return

    def get_prunable_weights():
        return [weight for _, weight in prunable_weights(layer)]

    get_prunable_weights.derived_by_tf_prune = True
    layer.get_prunable_weights = get_prunable_weights
