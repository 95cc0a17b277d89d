"""Stripping: pruned models and graphs without their pruning state.

`strip_pruning` turns a pruned Keras model into a plain one whose weights
hold `mask * weight`. The rest is contrib's `strip_pruning_vars_lib` for TF1
graphs: freeze a checkpoint's graph, then replace each masked-weight node by
a constant of its value under the same name, keeping only what the outputs
need.
"""

import keras
import numpy as np
import tensorflow as tf
from keras.src.models.functional import Functional

from tf_prune.pruning import find_wrappers
from tf_prune.transform import reset_compiled_functions
from tf_prune.transform import replace_sublayers
from tf_prune.wrapper import PruneWrapper

# contrib's name for the product of a mask and its weight.
MASKED_WEIGHT_NAME = 'masked_weight'


class StripError(ValueError):
    """Input that cannot be stripped; the message is one line naming it."""


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
    if isinstance(model, (keras.Sequential, Functional)):
        return keras.models.clone_model(
            model, clone_function=_stripped_layer, recursive=True)
    for wrapper in wrappers:
        for pruned in wrapper.pruned_weights:
            pruned.weight.assign(pruned.mask * pruned.weight)
    _unwrap_in_place(model, {id(w): w.layer for w in wrappers})
    return model


def _unwrap_in_place(layer, replacements):
    replace_sublayers(layer, replacements)
    for sublayer in layer._flatten_layers(include_self=False, recursive=False):  # pylint: disable=protected-access
        if not isinstance(sublayer, PruneWrapper):
            _unwrap_in_place(sublayer, replacements)
    if isinstance(layer, keras.Model):
        reset_compiled_functions(layer)


def _node_names(tensor_names):
    return [name.split(':')[0].lstrip('^') for name in tensor_names]


def rename_nodes(graph_def, renamed):
    """Renames nodes, pointing their consumers at the new names, in place.

    Args:
      graph_def: a GraphDef.
      renamed: `{old node name: new node name}`.

    Returns:
      `graph_def`.
    """
    renamed = {old: new for old, new in renamed.items() if old != new}
    if not renamed:
        return graph_def
    for node in graph_def.node:
        node.name = renamed.get(node.name, node.name)
        inputs = [_renamed_input(name, renamed) for name in node.input]
        del node.input[:]
        node.input.extend(inputs)
    return graph_def


def _renamed_input(name, renamed):
    control = name.startswith('^')
    node, _, port = name.lstrip('^').partition(':')
    node = renamed.get(node, node)
    return ('^' if control else '') + node + (':' + port if port else '')


def fold_constants(graph_def, nodes):
    """Replaces nodes by Const nodes holding their values.

    Args:
      graph_def: a GraphDef in which `nodes` compute from constants only.
      nodes: `{node name: name of its Const}`; the consumers of a renamed
        node are pointed at the new name.

    Returns:
      A new GraphDef.
    """
    if not nodes:
        return graph_def
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name='')
        with tf.compat.v1.Session(graph=graph) as session:
            values = session.run({n: f'{n}:0' for n in nodes})
    folded = tf.compat.v1.GraphDef()
    folded.CopyFrom(graph_def)
    for node in folded.node:
        if node.name in values:
            value = np.asarray(values[node.name])
            name = node.name
            node.Clear()
            node.name = name
            node.op = 'Const'
            node.attr['dtype'].type = tf.as_dtype(value.dtype).as_datatype_enum
            node.attr['value'].tensor.CopyFrom(tf.make_tensor_proto(value))
    return rename_nodes(folded, nodes)


def check_output_nodes(graph_def, output_node_names):
    """Raises `StripError` naming any output node not in the graph."""
    if not output_node_names:
        raise StripError(
            '--output_node_names is empty; name the graph\'s output nodes, '
            f'for example {", ".join(output_candidates(graph_def)[:5])}')
    present = {node.name for node in graph_def.node}
    missing = [name for name in output_node_names if name not in present]
    if missing:
        raise StripError(
            f'no node {", ".join(map(repr, missing))} in the graph; nodes no '
            f'other node reads: {", ".join(output_candidates(graph_def))}')


# Node kinds that are never a model's output: training, saving, summaries.
_NOT_OUTPUTS = ('NoOp', 'Assign', 'AssignAdd', 'AssignSub', 'SaveV2',
                'RestoreV2', 'MergeV2Checkpoints', 'ScalarSummary',
                'HistogramSummary', 'MergeSummary', 'Const', 'Placeholder',
                'PlaceholderWithDefault', 'VariableV2', 'VarHandleOp')


def output_candidates(graph_def, limit=20):
    """Names of the nodes no other node reads: a graph's likely outputs."""
    read = set()
    for node in graph_def.node:
        read.update(_node_names(node.input))
    names = [n.name for n in graph_def.node
             if n.name not in read and n.op not in _NOT_OUTPUTS
             and not n.op.startswith('Apply') and not n.name.startswith(
                 ('save/', 'gradients/'))]
    return names[:limit] + (['...'] if len(names) > limit else [])


def strip_pruning_vars_fn(input_graph_def, output_node_names):
    """contrib's stripping of a frozen TF1 graph.

    Args:
      input_graph_def: a frozen GraphDef (every variable a Const).
      output_node_names: the nodes the stripped graph must compute.

    Returns:
      A GraphDef in which every node named `.../masked_weight` is a Const of
      its value, with only the nodes `output_node_names` need.
    """
    check_output_nodes(input_graph_def, output_node_names)
    masked = {node.name: node.name for node in input_graph_def.node
              if MASKED_WEIGHT_NAME in node.name}
    stripped = fold_constants(input_graph_def, masked)
    return tf.compat.v1.graph_util.extract_sub_graph(
        stripped, list(output_node_names))


def latest_checkpoint(checkpoint_dir):
    """The prefix of the newest checkpoint in `checkpoint_dir`.

    Raises:
      StripError: the directory is missing or holds no checkpoint.
    """
    if not tf.io.gfile.isdir(checkpoint_dir):
        raise StripError(f'checkpoint directory {checkpoint_dir} does not '
                         f'exist')
    prefix = tf.train.latest_checkpoint(checkpoint_dir)
    if prefix is None or not tf.io.gfile.exists(prefix + '.index'):
        raise StripError(
            f'no checkpoint in {checkpoint_dir} (no "checkpoint" file naming '
            f'a .index file); point --checkpoint_dir at a training directory')
    return prefix


def one_line(error):
    """The first line of an error's message."""
    message = getattr(error, 'message', None) or str(error)
    return message.strip().splitlines()[0] if message.strip() else repr(error)


def graph_def_from_checkpoint(checkpoint_dir, output_node_names):
    """The latest TF1 checkpoint's graph, frozen to `output_node_names`.

    Args:
      checkpoint_dir: a directory with a TF1 checkpoint and its `.meta`.
      output_node_names: the nodes the frozen graph must compute.

    Returns:
      A GraphDef in which every variable the outputs read is a Const.

    Raises:
      StripError: no checkpoint, no `.meta` graph, an unreadable
        checkpoint, or an output node not in the graph.
    """
    prefix = latest_checkpoint(checkpoint_dir)
    if not tf.io.gfile.exists(prefix + '.meta'):
        raise StripError(f'checkpoint {prefix} has no .meta graph')
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        try:
            saver = tf.compat.v1.train.import_meta_graph(
                prefix + '.meta', clear_devices=True)
        except Exception as error:  # pylint: disable=broad-except
            raise StripError(f'graph {prefix}.meta is unreadable: '
                             f'{one_line(error)}') from error
        graph_def = graph.as_graph_def()
        check_output_nodes(graph_def, output_node_names)
        try:
            saver.restore(session, prefix)
        except (tf.errors.OpError, ValueError) as error:
            raise StripError(f'checkpoint {prefix} is unreadable: '
                             f'{one_line(error)}') from error
        return tf.compat.v1.graph_util.convert_variables_to_constants(
            session, graph_def, list(output_node_names))
