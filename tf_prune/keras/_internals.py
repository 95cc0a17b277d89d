"""Every use tf_prune makes of Keras' private members, one function each.

Keras 3 has no public way to list or replace the sublayers a layer holds, to
tell a Functional model from a subclassed one, or to name extra variables in
TF checkpoints. These functions are the only places tf_prune reaches for
what Keras keeps private; each says why it must.
"""

import keras
from keras.src.models.functional import Functional


def direct_sublayers(layer):
    """The layers `layer` holds directly (attributes, lists, dicts).

    Why: `Model.layers` exists on models only, and lists a Functional
    model's graph rather than what a layer holds; `_flatten_layers` is how
    Keras itself walks a layer's sublayers.
    """
    return list(layer._flatten_layers(include_self=False, recursive=False))  # pylint: disable=protected-access


def is_graph_model(layer):
    """Whether `layer` is a Sequential or Functional model.

    Why: Keras exports no `Functional` class; `keras.Model(inputs, outputs)`
    returns one, and only such models can be rebuilt by `clone_model`.
    """
    return isinstance(layer, (keras.Sequential, Functional))


def replace_sublayers(parent, replacements):
    """Points `parent`'s attributes (and lists, dicts of them) at new layers.

    Why: a built layer's sublayers are also listed by its `_tracker`, which
    Keras uses for `parent.layers` and the order of `parent.weights`; the
    tracker's lists are swapped in place so both stay as they were, and the
    tracker's own stores are left alone.

    Args:
      parent: a layer or subclassed model.
      replacements: `{id(old layer): new layer}`.
    """
    tracker = parent._tracker  # pylint: disable=protected-access
    stores = [store for _, store in tracker.config.values()]

    def replacement(old):
        # A layer held twice is swapped once.
        if tracker.is_in_store('layers', old):
            tracker.replace_tracked_value('layers', old, replacements[id(old)])
        return replacements[id(old)]

    for attr, value in list(vars(parent).items()):
        if any(value is store for store in stores):
            continue
        if isinstance(value, keras.layers.Layer):
            if id(value) in replacements:
                setattr(parent, attr, replacement(value))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if id(item) in replacements:
                    list.__setitem__(value, i, replacement(item))
        elif isinstance(value, dict):
            for key, item in list(value.items()):
                if id(item) in replacements:
                    dict.__setitem__(value, key, replacement(item))


def copy_input_shape_argument(layer, wrapper):
    """Gives `wrapper` the `input_shape=` that `layer` was created with.

    Why: Keras keeps a layer's `input_shape=` argument in the private
    `_input_shape_arg`, from which a Sequential model makes its input
    layer; a wrapper standing first in a Sequential model must carry it,
    or the model stays unbuilt (tfmot's wrapper copied tf_keras'
    `_batch_input_shape` for the same reason).
    """
    shape = getattr(layer, '_input_shape_arg', None)  # pylint: disable=protected-access
    if shape is not None:
        wrapper._input_shape_arg = shape  # pylint: disable=protected-access


class CheckpointChildren:
    """Mixin naming a layer's extra variables in TF checkpoints.

    Why: `tf.train.Checkpoint` finds a layer's variables through
    `_trackable_children`, which skips the lists Keras saves in `.keras`
    files. A class using this mixin returns `{name: variable}` from
    `checkpoint_children()`, and those names join its checkpoint children.
    """

    def checkpoint_children(self):
        """`{name within the layer: variable}` to add to checkpoints."""
        return {}

    def _trackable_children(self, save_type='checkpoint', **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        children.update(self.checkpoint_children())
        return children


def reset_compiled_functions(model):
    """Drops `model`'s traced train, test and predict steps.

    Why: Keras caches the traced steps on these attributes and reuses them
    after layers are swapped, so they would still run the old layers.
    """
    model.train_function = None
    model.test_function = None
    model.predict_function = None


def graph_calls(model):
    """The layer calls of a Sequential or Functional model, in running order.

    Why: Keras 3 keeps a graph model's calls in the private
    `_nodes_by_depth` (a Sequential model's in its private `_functional`);
    the public `operations` lists each layer once, without the tensors each
    call reads and writes, so a layer called twice, or a nested model, could
    not be followed.

    Args:
      model: a built Sequential or Functional model.

    Returns:
      A list of `(operation, args, kwargs, inputs, outputs)`, one per call of
      the model's own graph (a nested model's call is one entry): the layer or
      op called, the arguments it was called with (KerasTensors among them),
      and its input and output KerasTensors as flat lists. Each call comes
      after the calls whose outputs it reads.

    Raises:
      ValueError: `model` is a Sequential model that was never built.
    """
    graph = model._functional if isinstance(model, keras.Sequential) else model  # pylint: disable=protected-access
    if graph is None:
        raise ValueError(
            f'Sequential model {model.name!r} has no graph yet; build it '
            f'(give it a keras.Input or call it once) first')
    nodes_by_depth = graph._nodes_by_depth  # pylint: disable=protected-access
    calls = []
    # Keras runs the graph by decreasing depth: a call's depth is larger
    # than the depth of every call that reads its outputs.
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            if node.is_input or node.operation is None:
                continue
            calls.append((node.operation, node.arguments.args,
                          node.arguments.kwargs, list(node.input_tensors),
                          list(node.output_tensors)))
    return calls
