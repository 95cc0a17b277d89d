"""`prune_low_magnitude`, `strip_pruning` and `prune_scope`, as tfmot 0.8.1
spells them, on Keras 3 models."""

import inspect

import keras

from tf_prune.keras import _internals
from tf_prune.keras import strip as strip_lib
from tf_prune.keras.prune import wrap_layers
from tf_prune.tfmot import registry
from tf_prune.tfmot.wrapper import PruneLowMagnitude


def prune_scope():
    """A scope in which models pruned by the facade load by class name.

    `.keras` files load without it (the wrapper is registered with Keras);
    it is kept for code written for tfmot, whose wrapper needed it.

    Returns:
      A `keras.saving.custom_object_scope` naming `PruneLowMagnitude`.
    """
    return keras.saving.custom_object_scope(
        {'PruneLowMagnitude': PruneLowMagnitude})


def _wrap_list(layers, params):
    """tfmot's list case: each layer wrapped, wrappers and inputs kept."""
    wrapped = []
    for layer in layers:
        if isinstance(layer, PruneLowMagnitude):
            wrapped.append(layer)
        elif isinstance(layer, keras.layers.InputLayer):
            wrapped.append(type(layer).from_config(layer.get_config()))
        else:
            wrapped.append(PruneLowMagnitude(layer, **params))
    return wrapped


def _prune_model(model, params, pruning_policy):
    """Every layer of a model wrapped, those the policy leaves aside kept.

    A Sequential or Functional model is rebuilt around the same layers
    (nested models too), each layer wrapped as tfmot wraps it, an unknown
    one an error; a subclassed model (beyond tfmot) gets the layers that
    have weights to prune wrapped in place.
    """
    graph = _internals.is_graph_model(model)
    if not graph and 'training' not in inspect.signature(
            model.call).parameters:
        # Keras 3's fit passes training=True only to a call that takes it;
        # tf_keras had a global learning phase the wrappers read instead.
        raise ValueError(
            f'{type(model).__name__}.call() takes no `training` argument, so '
            f'Keras 3 trains it without training=True and its pruning '
            f'wrappers cannot tell training steps; add `training=None` to '
            f'its call()')

    def wrap(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return None
        if pruning_policy and not pruning_policy.allow_pruning(layer):
            return None
        if not graph and not (registry.supports(layer) and (
                not layer.built or registry.prunable_weights(layer))):
            return None  # in a subclassed model, only what prunes
        return PruneLowMagnitude(layer, **params)

    pruned, _ = wrap_layers(model, wrap)
    return pruned


def prune_low_magnitude(to_prune, pruning_schedule=None, block_size=(1, 1),
                        block_pooling_type='AVG', pruning_policy=None,
                        sparsity_m_by_n=None, **kwargs):
    """Wraps a layer, a list of layers or a model's layers for pruning.

    As tfmot 0.8.1: a layer comes back as a `PruneLowMagnitude` wrapper
    (named `prune_low_magnitude_<name>`), a list as a list of wrappers, and
    a Sequential or Functional model as a copy whose every layer is wrapped
    (layers with nothing to prune too, as tfmot does; the copy shares the
    layers' weights). Beyond tfmot, a subclassed model gets its prunable
    layers wrapped in place. Train it with the `UpdatePruningStep` callback.

    Args:
      to_prune: a Keras layer, list of layers, or model.
      pruning_schedule: a `PruningSchedule` (default
        `ConstantSparsity(0.5, 0)`).
      block_size: (height, width) of blocks pruned together in rank-2
        weights.
      block_pooling_type: 'AVG' or 'MAX'.
      pruning_policy: a `PruningPolicy` choosing the layers to wrap (and
        checking the model), or None for all.
      sparsity_m_by_n: None, or (m, n): m zeros in every n consecutive
        weights along the input-channel axis, e.g. (2, 4).
      **kwargs: base layer arguments for a single layer's wrapper; ignored
        otherwise, as in tfmot.

    Returns:
      The wrapper, the list of wrappers, or the pruned model.

    Raises:
      ValueError: tfmot's errors: an object that is not a layer, list or
        model; an unsupported layer; bad schedule or pattern arguments; a
        model the policy rejects.
    """
    params = {'pruning_schedule': pruning_schedule, 'block_size': block_size,
              'block_pooling_type': block_pooling_type,
              'sparsity_m_by_n': sparsity_m_by_n}
    if isinstance(to_prune, list):
        return _wrap_list(to_prune, params)
    if isinstance(to_prune, keras.Model):
        if pruning_policy:
            pruning_policy.ensure_model_supports_pruning(to_prune)
        return _prune_model(to_prune, params, pruning_policy)
    if isinstance(to_prune, keras.layers.Layer):
        return PruneLowMagnitude(to_prune, **params, **kwargs)
    raise ValueError(
        f'`prune_low_magnitude` can only prune an object of the following '
        f'types: keras.models.Sequential, keras functional model, '
        f'keras.layers.Layer, list of keras.layers.Layer. You passed an '
        f'object of type: {type(to_prune).__name__}.')


def strip_pruning(model):
    """A pruned model without its wrappers: the layers with their weights
    times their masks (zeros where masked), ready to export.

    As `tf_prune.strip_pruning`: a Sequential or Functional model is copied
    with the original layer classes and names; a subclassed one is stripped
    in place.

    Args:
      model: a `keras.Model` pruned with `prune_low_magnitude`.

    Returns:
      The stripped model.

    Raises:
      ValueError: `model` is not a `keras.Model`.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(
            f'strip_pruning expects a keras.Model, got '
            f'{type(model).__name__}; strip a pruned layer by putting it in '
            f'a model first, or read wrapper.layer')
    return strip_lib.strip_pruning(model)
