"""Freezing: every model source as a `FrozenGraph`.

A `FrozenGraph` is a GraphDef whose variables are Const nodes named after the
variables (`fc1/bias`), whose masked weights are folded into Const nodes
named `<weight>/masked_weight` (`fc1/kernel/masked_weight`, as contrib named
them), with no mask, threshold or step node left, and the names of its
inputs and outputs. Keras models, SavedModels and TF1 checkpoints all freeze
to one; the writers take it from there.
"""

import dataclasses
import re

import keras
import tensorflow as tf
from tensorflow.python.framework import convert_to_constants

from tf_prune.core import errors
from tf_prune.core.checkpoint_dirs import latest_checkpoint
from tf_prune.export import tf1_graph

# A mask variable's name: `<layer>/mask` or `<layer>/<weight>/mask`.
_MASK_NAME = re.compile(r'(^|/)mask$')


@dataclasses.dataclass(frozen=True)
class FrozenGraph:
    """A GraphDef with constants for variables, and its inputs and outputs.

    Attributes:
      graph_def: the GraphDef.
      inputs: names of its input (Placeholder) nodes.
      outputs: names of its output nodes.
    """
    graph_def: tf.compat.v1.GraphDef
    inputs: tuple
    outputs: tuple

    def function(self):
        """A ConcreteFunction computing `outputs` from `inputs`.

        Its arguments are named after the inputs and it returns a dict keyed
        by the output names.
        """
        nodes = {node.name: node for node in self.graph_def.node}
        specs = [tf.TensorSpec(
            tf.TensorShape(nodes[name].attr['shape'].shape),
            tf.as_dtype(nodes[name].attr['dtype'].type), name=name)
            for name in self.inputs]

        def compute(*tensors):
            outputs = tf.graph_util.import_graph_def(
                self.graph_def, name='stripped',
                input_map={f'{name}:0': t for name, t in zip(self.inputs,
                                                             tensors)},
                return_elements=[f'{name}:0' for name in self.outputs])
            return dict(zip(self.outputs, outputs))

        return tf.function(compute, input_signature=specs,
                           autograph=False).get_concrete_function()

    def in_float32(self):
        """This graph computing in float32 where it computes in float16 or
        bfloat16 (see `tf1_graph.cast_to_float32`)."""
        return dataclasses.replace(
            self, graph_def=tf1_graph.cast_to_float32(self.graph_def))


def _unique(name, taken):
    unique, count = name, 0
    while unique in taken:
        count += 1
        unique = f'{name}_{count}'
    taken.add(unique)
    return unique


def _source_node(nodes, name):
    """The node `name` reads, looking through Identity nodes."""
    node = nodes[name.split(':')[0]]
    while node.op == 'Identity' and len(node.input) == 1:
        node = nodes[node.input[0].split(':')[0]]
    return node


def _drop_constant_control_inputs(graph_def):
    """Drops control edges from constants, in place.

    Variable reads were ordered before stateful ops (a loop, say) by control
    edges; frozen, they are constants, and the edges would keep the masks'
    Const nodes in the graph.
    """
    nodes = {node.name: node for node in graph_def.node}
    for node in graph_def.node:
        kept = [name for name in node.input if not (
            name.startswith('^')
            and _source_node(nodes, name[1:]).op == 'Const')]
        if len(kept) != len(node.input):
            del node.input[:]
            node.input.extend(kept)


def _freeze_function(function, output_node_names=None):
    """Freezes a ConcreteFunction that reads variables and returns a dict.

    Variables become Consts named after them; each `weight * mask` product
    becomes a Const named `<weight>/masked_weight`; a named Identity node is
    added for each output (the dict's keys).

    Args:
      function: the ConcreteFunction, e.g. a traced Keras model or a
        SavedModel's signature.
      output_node_names: nodes of the frozen graph to output instead of the
        function's outputs.

    Returns:
      A `FrozenGraph`.
    """
    variable_names = {id(v.handle): v.name.split(':')[0]
                      for v in function.graph.variables}
    captured = {internal.op.name: variable_names[id(external)]
                for external, internal in function.graph.captures
                if id(external) in variable_names}
    frozen = convert_to_constants.convert_variables_to_constants_v2(
        function, lower_control_flow=False, aggressive_inlining=True)
    graph_def = frozen.graph.as_graph_def()
    present = {node.name for node in graph_def.node}
    taken = present - set(captured)
    tf1_graph.rename_nodes(graph_def, {
        old: _unique(new, taken) for old, new in captured.items()
        if old in present})

    nodes = {node.name: node for node in graph_def.node}
    products = {}
    for node in graph_def.node:
        if node.op != 'Mul' or len(node.input) != 2:
            continue
        sources = [_source_node(nodes, name) for name in node.input]
        if all(s.op == 'Const' for s in sources):
            masks = [s for s in sources if _MASK_NAME.search(s.name)]
            weights = [s for s in sources if not _MASK_NAME.search(s.name)]
            if len(masks) == 1 and len(weights) == 1:
                products[node.name] = _unique(
                    f'{weights[0].name}/{tf1_graph.MASKED_WEIGHT_NAME}', taken)
    graph_def = tf1_graph.fold_constants(graph_def, products)

    _drop_constant_control_inputs(graph_def)
    inputs = tuple(t.op.name for t in frozen.inputs)
    if output_node_names:
        tf1_graph.check_output_nodes(graph_def, output_node_names)
        outputs = tuple(output_node_names)
    else:
        outputs = []
        # Both kinds of function return a dict, flattened in key order.
        for key, tensor in zip(sorted(function.structured_outputs),
                               frozen.outputs):
            name = _unique(key, taken)
            node = graph_def.node.add(name=name, op='Identity')
            node.input.append(tensor.name[:-2] if tensor.name.endswith(':0')
                              else tensor.name)
            node.attr['T'].type = tensor.dtype.as_datatype_enum
            outputs.append(name)
        outputs = tuple(outputs)
    graph_def = tf1_graph.subgraph(graph_def, outputs)
    present = {node.name for node in graph_def.node}
    return FrozenGraph(graph_def, tuple(i for i in inputs if i in present),
                       outputs)


def _input_specs(model, batch_size):
    try:
        inputs = model.inputs
    except AttributeError:
        inputs = None
    if inputs:
        return [tf.TensorSpec((batch_size,) + tuple(i.shape[1:]), i.dtype,
                              name=i.name) for i in inputs]
    build_config = model.get_build_config() or {}
    shape = build_config.get('input_shape')
    if shape is None or not isinstance(shape[0], (int, type(None))):
        raise errors.StripError(
            f'model {model.name} has no known input: build it (call it on '
            f'a batch) before exporting')
    return [tf.TensorSpec((batch_size,) + tuple(shape[1:]), tf.float32,
                          name='inputs')]


def _output_names(model, count):
    if isinstance(model, keras.Sequential):
        names = [model.layers[-1].name]
    else:
        names = list(getattr(model, 'output_names', None) or [])
    if len(names) != count:
        names = [f'output_{i}' for i in range(count)]
    return names


def freeze(model, output_node_names=None, batch_size=None):
    """A Keras model (pruned or not) as a `FrozenGraph`.

    Args:
      model: a built Keras model.
      output_node_names: nodes of the frozen graph to output; default: the
        model's outputs, named after them (`model.output_names`).
      batch_size: the inputs' batch dimension; None leaves it open.

    Returns:
      A `FrozenGraph` whose inputs are named after the model's inputs.
    """
    specs = _input_specs(model, batch_size)

    def serve(*tensors):
        outputs = model(tensors[0] if len(tensors) == 1 else list(tensors),
                        training=False)
        flat = tf.nest.flatten(outputs)
        return dict(zip(_output_names(model, len(flat)), flat))

    function = tf.function(serve, input_signature=specs).get_concrete_function()
    return _freeze_function(function, output_node_names)


def freeze_saved_model(path, output_node_names=None, signature=None):
    """A SavedModel's serving signature as a `FrozenGraph`.

    Args:
      path: the SavedModel directory.
      output_node_names: nodes to output instead of the signature's outputs.
      signature: the signature key; default 'serving_default' (or the only
        one).

    Returns:
      A `FrozenGraph`; masked weights of a pruned model are folded.

    Raises:
      ModelFileError: the SavedModel is unreadable.
      StripError: it has no such signature.
    """
    try:
        loaded = tf.saved_model.load(path)
    except Exception as error:  # pylint: disable=broad-except
        raise errors.ModelFileError(
            f'SavedModel {path} is unreadable: {errors.one_line(error)}'
        ) from error
    signatures = dict(loaded.signatures)
    if signature is None:
        signature = ('serving_default' if 'serving_default' in signatures
                     or len(signatures) != 1 else next(iter(signatures)))
    if signature not in signatures:
        raise errors.StripError(
            f'SavedModel {path} has no signature {signature!r} (it has: '
            f'{", ".join(signatures) or "none"})')
    return _freeze_function(signatures[signature], output_node_names)


def freeze_checkpoint(checkpoint_dir, output_node_names):
    """A TF1 checkpoint's graph, frozen and stripped as contrib strips it.

    Args:
      checkpoint_dir: a directory with TF1 checkpoints and `.meta` graphs.
      output_node_names: the output nodes (required: a TF1 graph does not
        say which nodes are its outputs).

    Returns:
      A `FrozenGraph` whose inputs are the Placeholders the outputs need.

    Raises:
      ModelFileError: no checkpoint, a damaged one, or no `.meta` graph.
      StripError: no or unknown output nodes.
    """
    # The files first: a damaged checkpoint needs mending whichever outputs
    # are asked for.
    prefix = latest_checkpoint(checkpoint_dir)
    if not output_node_names:
        raise errors.StripError(
            f'a TF1 checkpoint ({checkpoint_dir}) needs output_node_names: '
            f'its graph does not say which nodes are outputs')
    graph_def = tf1_graph.strip_pruning_vars_fn(
        tf1_graph.freeze_prefix(prefix, output_node_names), output_node_names)
    inputs = tuple(node.name for node in graph_def.node
                   if node.op == 'Placeholder')
    return FrozenGraph(graph_def, inputs, tuple(output_node_names))


def as_frozen_graph(source, output_node_names=None):
    """A Keras model or a `FrozenGraph` as a `FrozenGraph`."""
    if isinstance(source, FrozenGraph):
        if output_node_names and tuple(output_node_names) != source.outputs:
            raise errors.StripError(
                f'this graph is frozen with outputs {", ".join(source.outputs)};'
                f' output_node_names cannot change them')
        return source
    return freeze(source, output_node_names)
