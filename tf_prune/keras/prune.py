"""`prune`: a model with its prunable layers wrapped in `PruneWrapper`s."""

import absl.logging as logging
import keras

from tf_prune.core import hparams as hparams_lib
from tf_prune.core import schedule
from tf_prune.keras import _internals
from tf_prune.keras.wrapper import PruneWrapper
from tf_prune.keras.wrapper import find_wrappers
from tf_prune.keras.wrapper import is_dense_by_design
from tf_prune.keras.wrapper import knows_layer


class _Pruner:
    """Walks a model once, wrapping each prunable layer once."""

    def __init__(self, prune_option):
        self._prune_option = prune_option
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
            result = keras.models.clone_model(
                layer, clone_function=self._replace_in_graph, recursive=True)
        elif knows_layer(layer) and not isinstance(layer, keras.Model):
            result = PruneWrapper(layer, prune_option=self._prune_option)
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


def prune(model_or_layer, hparams=None, *, strict=False):
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

    Returns:
      The pruned model or the wrapper.

    Raises:
      ValueError: nothing to prune; `strict` and an unknown layer; a weight
        matched by two patterns of a map; invalid hparams.
    """
    hparams = hparams_lib.as_hparams(hparams)
    pruner = _Pruner(hparams.prune_option)
    pruned = pruner.replace(model_or_layer)
    if pruner.unknown:
        listed = ', '.join(f'{layer.name} ({type(layer).__name__})'
                           for layer in pruner.unknown)
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
