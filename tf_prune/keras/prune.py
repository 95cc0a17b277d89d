"""`prune`: a model with its prunable layers wrapped in `PruneWrapper`s."""

import absl.logging as logging
import keras

from tf_prune.core import hparams as hparams_lib
from tf_prune.core import schedule
from tf_prune.keras import _internals
from tf_prune.keras import cloning
from tf_prune.keras import structures
from tf_prune.keras.controller import Pruning
from tf_prune.keras.wrapper import PruneWrapper
from tf_prune.keras.wrapper import find_wrappers
from tf_prune.keras.wrapper import is_dense_by_design
from tf_prune.keras.wrapper import knows_layer


class _Pruner:
    """Walks a model once, wrapping each prunable layer once.

    Args:
      wrap: a function from a layer to its `PruneWrapper`, or None to leave
        the layer as it is.
    """

    def __init__(self, wrap):
        self._wrap = wrap
        self._done = {}
        self.unknown = []

    def replace(self, layer):
        """What stands for `layer` in the pruned model.

        A wrapper for a prunable layer, a pruned copy of a Sequential or
        Functional model, or `layer` itself with its sublayers replaced.
        """
        if id(layer) in self._done:
            return self._done[id(layer)]
        if isinstance(layer, PruneWrapper):
            result = layer
        elif _internals.is_graph_model(layer):
            result = cloning.clone_graph_model(
                layer, self._replace_in_graph, recursive=True)
        elif (not isinstance(layer, keras.Model)
              and (wrapper := self._wrap(layer)) is not None):
            result = wrapper
            if layer.built:
                result.build()
        else:
            self._replace_sublayers(layer)
            result = layer
        self._done[id(layer)] = result
        return result

    def _replace_in_graph(self, operation):
        if not isinstance(operation, keras.layers.Layer):
            return operation  # an op of the graph, such as a mask computation
        return self.replace(operation)

    def _replace_sublayers(self, layer):
        sublayers = _internals.direct_sublayers(layer)
        first_unknown = len(self.unknown)
        replacements = {}
        for sublayer in sublayers:
            new = self.replace(sublayer)
            if new is not sublayer:
                replacements[id(sublayer)] = new
        if layer.trainable_weights and not is_dense_by_design(layer):
            nested = {id(v) for s in sublayers for v in s.weights}
            if not replacements and not isinstance(layer, keras.Model):
                # Nothing inside is prunable: name the layer, not its parts
                # (a ConvLSTM1D rather than its cell).
                del self.unknown[first_unknown:]
                self.unknown.append(layer)
            elif any(id(v) not in nested for v in layer.trainable_weights):
                self.unknown.append(layer)
        if replacements:
            _internals.replace_sublayers(layer, replacements)
            if isinstance(layer, keras.Model):
                _internals.reset_compiled_functions(layer)


def _check_patterns(hparams, wrappers):
    """Raises for a weight two patterns match; warns of unused patterns."""
    names = [p.name for w in wrappers for p in w.pruned_weights]
    for name in names:
        schedule.plan_weight(hparams, name)  # raises for a double match
    for hparam, parse in (
            ('weight_sparsity_map', hparams_lib.parse_weight_sparsity_map),
            ('block_dims_map', hparams_lib.parse_block_dims_map)):
        for regex, _ in parse(getattr(hparams, hparam)):
            if not any(regex.search(name) for name in names):
                logging.warning(
                    '%s pattern %r matches no pruned weight (pruned: %s)',
                    hparam, regex.pattern, ', '.join(names))


def prune(model_or_layer, hparams=None, *, strict=False, one_shot=False):
    """Wraps the prunable layers of a model in `PruneWrapper`s.

    Sequential and Functional models (also nested ones) are rebuilt around
    the same layer objects, so names and weights are kept: the pruned model
    shares its layers' variables with the model passed (which still computes
    without masks); train and save the returned one. Subclassed models and
    custom layers holding sublayers get their sublayers wrapped in place. A
    single layer comes back wrapped. A layer used at several places is
    wrapped once. Training a wrapper that no `Pruning` controls logs a
    warning: its masks would stay all ones.

    Args:
      model_or_layer: a Keras model or layer.
      hparams: a `PruningHParams` or spec string (None: the defaults).
        Validated; its `weight_sparsity_map` and `block_dims_map` patterns
        are checked against the pruned weights' names (`<layer>/<weight>`),
        and its `prune_option` decides the state each wrapper keeps.
      strict: raise instead of logging when a layer with weights is left
        dense because tf_prune does not know it.
      one_shot: also mask now, at `target_sparsity` (scaled by
        `weight_sparsity_map`): one-shot pruning of a trained model, ready
        to evaluate, fine-tune (with a `PruningCallback` whose schedule
        holds the target, as `initial_sparsity` = `target_sparsity` does) or
        shrink; with `nm_sparsity`, the N:M masks. Not with
        `channel_criterion=taylor`, whose scores need training steps.

    Returns:
      The pruned model or the wrapper.

    Raises:
      ValueError: nothing to prune; `strict` and an unknown layer; a weight
        matched by two patterns of a map; invalid hparams; `one_shot` with
        a criterion that needs training.
    """
    hparams = hparams_lib.as_hparams(hparams)
    if one_shot and hparams.structure == 'channel' and (
            hparams.channel_criterion == 'taylor'):
        raise ValueError(
            'channel_criterion=taylor scores channels by the gradients of '
            'training steps, which one-shot pruning has none of; use l1, l2 '
            'or bn_scale, or prune during training with PruningCallback')
    if hparams.structure == 'weight':
        pruned = _prune_weights(model_or_layer, hparams, strict)
    else:
        pruned = structures.get(hparams.structure).prune(
            model_or_layer, hparams, strict)
    if one_shot:
        # The masks are set on purpose: training them further needs no
        # controller, and no warning says they stay dense. N:M masks take
        # no sparsity.
        target = None if hparams.nm_sparsity else hparams.target_sparsity
        Pruning(hparams, pruned, sparsity=target)._update_once(0)
    return pruned


def _prune_weights(model_or_layer, hparams, strict):
    """`prune` with `structure=weight`."""

    def wrap(layer):
        if knows_layer(layer):
            return PruneWrapper(layer, prune_option=hparams.prune_option)
        return None

    pruned, unknown = wrap_layers(model_or_layer, wrap)
    if unknown:
        listed = ', '.join(f'{layer.name} ({type(layer).__name__})'
                           for layer in unknown)
        message = (f'tf_prune does not know the weights of {listed}; they '
                   f'stay dense. Give such layers a get_prunable_weights() '
                   f'method to prune them')
        if strict:
            raise ValueError(message)
        logging.warning(message)
    wrappers = find_wrappers(pruned)
    if not wrappers:
        raise ValueError(
            f'{model_or_layer.name} has no layer tf_prune can prune (Dense, '
            f'Conv, Embedding, RNN, MultiHeadAttention, ... or a layer with '
            f'get_prunable_weights())')
    _check_patterns(hparams, [w for w in wrappers if w.built])
    return pruned


def wrap_layers(model_or_layer, wrap):
    """Wraps the layers `wrap` chooses, as `prune` describes.

    Args:
      model_or_layer: a Keras model or layer.
      wrap: a function from a layer to its `PruneWrapper`, or None to leave
        the layer as it is.

    Returns:
      `(the pruned model, or the wrapper, layers with weights that were
      neither wrapped nor are dense by design)`.
    """
    pruner = _Pruner(wrap)
    return pruner.replace(model_or_layer), pruner.unknown
