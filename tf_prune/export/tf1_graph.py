"""contrib's strip of TF1 graphs: `strip_pruning_vars_lib`, and graph surgery.

`graph_def_from_checkpoint` freezes a TF1 checkpoint's graph to its outputs;
`strip_pruning_vars_fn` then replaces each masked-weight node by a constant
of its value under the same name, keeping only what the outputs need.
`fold_constants` and `rename_nodes` serve the Keras freezing too.
"""

from google.protobuf import message
import numpy as np
import tensorflow as tf
from tensorflow.python.util import deprecation

from tf_prune.core import errors
from tf_prune.core.checkpoint_dirs import latest_checkpoint

# contrib's name for the product of a mask and its weight.
MASKED_WEIGHT_NAME = 'masked_weight'


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


# Types TFLite's builtin kernels do not compute in.
_HALF_TYPES = (tf.float16.as_datatype_enum, tf.bfloat16.as_datatype_enum)


def _cast_attr(attr):
    """Makes an AttrValue's half types float32, in place."""
    kind = attr.WhichOneof('value')
    if kind == 'type' and attr.type in _HALF_TYPES:
        attr.type = tf.float32.as_datatype_enum
    elif kind == 'list' and any(t in _HALF_TYPES for t in attr.list.type):
        types = [tf.float32.as_datatype_enum if t in _HALF_TYPES else t
                 for t in attr.list.type]
        del attr.list.type[:]
        attr.list.type.extend(types)
    elif kind == 'tensor' and attr.tensor.dtype in _HALF_TYPES:
        value = tf.make_ndarray(attr.tensor).astype(np.float32)
        attr.tensor.CopyFrom(tf.make_tensor_proto(value))


def cast_to_float32(graph_def):
    """`graph_def` computing in float32 where it computes in a half type.

    Every float16 or bfloat16 constant, input and op of the graph and of its
    function library becomes float32: the graph computes what it computed,
    with more precision (a `Cast` to a half type becomes a float32 no-op).

    Args:
      graph_def: a frozen GraphDef.

    Returns:
      A new GraphDef.
    """
    cast = tf.compat.v1.GraphDef()
    cast.CopyFrom(graph_def)
    functions = cast.library.function
    for node in [*cast.node, *(n for f in functions for n in f.node_def)]:
        for attr in node.attr.values():
            _cast_attr(attr)
    for function in functions:
        for arg in [*function.signature.input_arg,
                    *function.signature.output_arg]:
            if arg.type in _HALF_TYPES:
                arg.type = tf.float32.as_datatype_enum
    return cast


def check_output_nodes(graph_def, output_node_names):
    """Raises `StripError` naming any output node not in the graph."""
    if not output_node_names:
        raise errors.StripError(
            'output_node_names is empty; name the graph\'s output nodes, '
            f'for example {", ".join(output_candidates(graph_def)[:5])}')
    present = {node.name for node in graph_def.node}
    missing = [name for name in output_node_names if name not in present]
    if missing:
        raise errors.StripError(
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
    return subgraph(stripped, output_node_names)


def subgraph(graph_def, output_node_names):
    """The nodes `output_node_names` need, in their order in `graph_def`.

    TF's `extract_sub_graph` does the same, and logs its own deprecation.

    Args:
      graph_def: a GraphDef holding every output node.
      output_node_names: the nodes to keep, with all they read (data and
        control inputs).

    Returns:
      A new GraphDef.
    """
    nodes = {node.name: node for node in graph_def.node}
    needed = set()
    pending = list(output_node_names)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.extend(_node_names(nodes[name].input))
    kept = tf.compat.v1.GraphDef()
    kept.versions.CopyFrom(graph_def.versions)
    kept.library.CopyFrom(graph_def.library)
    kept.node.extend(node for node in graph_def.node if node.name in needed)
    return kept


def meta_graph(prefix):
    """The `.meta` graph a TF1 checkpoint was saved with.

    Args:
      prefix: the checkpoint's prefix (`<directory>/model.ckpt-45`).

    Returns:
      A `MetaGraphDef`.

    Raises:
      ModelFileError: the `.meta` file is missing or is not a MetaGraphDef.
    """
    path = prefix + '.meta'
    if not tf.io.gfile.exists(path):
        raise errors.ModelFileError(
            f'checkpoint {prefix} has no .meta graph ({path} is missing)')
    meta = tf.compat.v1.MetaGraphDef()
    with tf.io.gfile.GFile(path, 'rb') as file:
        content = file.read()
    try:
        meta.ParseFromString(content)
    except message.DecodeError as error:
        raise errors.ModelFileError(
            f'{path} is not a MetaGraphDef (truncated, or another kind of '
            f'file)') from error
    if not meta.graph_def.node:
        raise errors.ModelFileError(f'{path} holds no graph')
    return meta


def graph_def_from_checkpoint(checkpoint_dir, output_node_names):
    """The latest TF1 checkpoint's graph, frozen to `output_node_names`.

    Args:
      checkpoint_dir: a directory with a TF1 checkpoint and its `.meta`.
      output_node_names: the nodes the frozen graph must compute.

    Returns:
      A GraphDef in which every variable the outputs read is a Const.

    Raises:
      ModelFileError: no checkpoint, no `.meta` graph, or an unreadable
        checkpoint.
      StripError: an output node not in the graph.
    """
    return freeze_prefix(latest_checkpoint(checkpoint_dir), output_node_names)


def freeze_prefix(prefix, output_node_names):
    """`graph_def_from_checkpoint` for a checkpoint already found intact.

    Args:
      prefix: the checkpoint's prefix, as `latest_checkpoint` returns it.
      output_node_names: the nodes the frozen graph must compute.

    Returns:
      A GraphDef in which every variable the outputs read is a Const.

    Raises:
      ModelFileError: no `.meta` graph, or one the checkpoint does not fit.
      StripError: an output node not in the graph.
    """
    meta = meta_graph(prefix)
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        try:
            saver = tf.compat.v1.train.import_meta_graph(
                meta, clear_devices=True)
        except Exception as error:  # pylint: disable=broad-except
            raise errors.ModelFileError(
                f'graph {prefix}.meta is unreadable: '
                f'{errors.one_line(error)}') from error
        graph_def = graph.as_graph_def()
        check_output_nodes(graph_def, output_node_names)
        try:
            saver.restore(session, prefix)
        except (tf.errors.OpError, ValueError) as error:
            raise errors.ModelFileError(
                f'checkpoint {prefix} does not fit its graph: '
                f'{errors.one_line(error)}') from error
        # contrib's own freezing, still TF's; its deprecation notice is
        # TF's to act on, not the user's.
        with deprecation.silence():
            return tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph_def, list(output_node_names))
