"""`strip_pruning`: a pruned Keras model without its pruning state."""

import keras

from tf_prune.keras import _internals
from tf_prune.keras import cloning
from tf_prune.keras.wrapper import PruneWrapper
from tf_prune.keras.wrapper import find_wrappers


def _masked_values(wrapper):
    """The inner layer's weight values, each pruned one times its mask."""
    values = [w.numpy() for w in wrapper.layer.weights]
    positions = {id(w): i for i, w in enumerate(wrapper.layer.weights)}
    for pruned in wrapper.pruned_weights:
        i = positions[id(pruned.weight)]
        values[i] = (pruned.mask * pruned.weight).numpy()
    return values


def _copy_layer(layer, values):
    """A new layer of `layer`'s class and config, built, holding `values`."""
    copy = layer.__class__.from_config(layer.get_config())
    build_config = layer.get_build_config()
    if build_config:
        copy.build_from_config(build_config)
    if values:
        copy.set_weights(values)
    return copy


def _stripped_layer(operation):
    if isinstance(operation, PruneWrapper):
        return _copy_layer(operation.layer, _masked_values(operation))
    if isinstance(operation, keras.layers.Layer) and not isinstance(
            operation, keras.layers.InputLayer):
        return _copy_layer(operation, operation.get_weights())
    return operation  # an op of the graph, such as a mask computation


def strip_pruning(model):
    """A pruned model without its pruning state.

    Each `PruneWrapper` gives way to the layer it wrapped, whose pruned
    weights hold `mask * weight`: the model computes what the pruned model
    computes, with no mask, threshold or step variable. Sequential and
    Functional models (nested ones too) are copied, with the original layer
    classes and names, and the pruned model is left as it was. A subclassed
    model was pruned in place, so it is stripped in place: its wrapped
    layers are put back and their pruned weights assigned `mask * weight`.

    Args:
      model: a Keras model (or a single `PruneWrapper`).

    Returns:
      The stripped model (or layer). A model with no wrapper is returned as
      it is.
    """
    if isinstance(model, PruneWrapper):
        return _stripped_layer(model)
    wrappers = find_wrappers(model)
    if not wrappers:
        return model
    if _internals.is_graph_model(model):
        return cloning.clone_graph_model(model, _stripped_layer,
                                         recursive=True)
    for wrapper in wrappers:
        for pruned in wrapper.pruned_weights:
            pruned.weight.assign(pruned.mask * pruned.weight)
    _unwrap_in_place(model, {id(w): w.layer for w in wrappers})
    return model


def _unwrap_in_place(layer, replacements):
    _internals.replace_sublayers(layer, replacements)
    for sublayer in _internals.direct_sublayers(layer):
        if not isinstance(sublayer, PruneWrapper):
            _unwrap_in_place(sublayer, replacements)
    if isinstance(layer, keras.Model):
        _internals.reset_compiled_functions(layer)
