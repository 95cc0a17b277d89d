"""How many zeros each weight tensor of a model file holds.

Reads a frozen GraphDef (.pb), a TFLite file (sparse-encoded tensors
included), a `.keras` file, a SavedModel, or a checkpoint directory (TF1 or
a tf_prune training directory); a pruned model's weights are counted as
`mask * weight`. The total is over every weight tensor, so biases and
layers left dense lower it: a model pruned to 90% in its kernels may show
far less in all (contrib issue #32766).
"""

import dataclasses
import os

from google.protobuf import message
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import variable_pb2
from tensorflow.lite.python import schema_py_generated as tflite_schema

from tf_prune.core import errors
from tf_prune.core.checkpoint_dirs import latest_checkpoint
from tf_prune.export import sources
from tf_prune.export import tf1_graph
from tf_prune.keras.wrapper import find_wrappers

# TFLite tensor types that hold weights (FLOAT32, FLOAT16, INT8), as numpy
# dtypes. INT32 constants are shapes, or biases of int8 models.
_TFLITE_DTYPES = {0: np.float32, 1: np.float16, 9: np.int8}


@dataclasses.dataclass(frozen=True)
class TensorSparsity:
    """One weight tensor's zeros.

    Attributes:
      name: the tensor's name in the file.
      shape: its dense shape.
      nonzeros: how many of its entries are not zero.
    """
    name: str
    shape: tuple
    nonzeros: int

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def sparsity(self):
        return 1.0 - self.nonzeros / self.size if self.size else 0.0


def _row(name, value):
    value = np.asarray(value)
    return TensorSparsity(name, tuple(value.shape),
                          int(np.count_nonzero(value)))


def _is_weight(value):
    return value.dtype.kind in 'fiu' and value.ndim >= 1 and value.size > 1


def _graph_def_rows(graph_def):
    rows = []
    for node in graph_def.node:
        if node.op == 'Const' and tf.as_dtype(
                node.attr['dtype'].type).is_floating:
            value = tf.make_ndarray(node.attr['value'].tensor)
            if _is_weight(value):
                rows.append(_row(node.name, value))
    return rows


def _readable_tflite_names(names):
    """Short names for TFLite tensors.

    The converter names a tensor after every op it fused, joined by `;`
    (`m/fc1/MatMul;m/fc1/Relu;m/fc1/BiasAdd`), and a kernel and its bias
    often share the first of them. The first op's name is kept, without the
    path all names share; names still alike are numbered in file order.
    """
    firsts = [name.split(';')[0].split('/') for name in names]
    shared = 0
    while len(firsts) > 1 and all(len(f) > shared + 1 for f in firsts) and \
            len({tuple(f[:shared + 1]) for f in firsts}) == 1:
        shared += 1
    short = ['/'.join(f[shared:]) for f in firsts]
    seen = {}
    readable = []
    for name in short:
        seen[name] = seen.get(name, 0) + 1
        count = short.count(name)
        readable.append(f'{name} ({seen[name]} of {count})' if count > 1
                        else name)
    return readable


def _loop_state_inputs(model, subgraph):
    """Tensors only WHILE ops read: a loop's initial state, not a weight."""
    readers = {}
    for o in range(subgraph.OperatorsLength()):
        operator = subgraph.Operators(o)
        code = model.OperatorCodes(operator.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        for t in operator.InputsAsNumpy():
            readers.setdefault(int(t), set()).add(builtin)
    return {t for t, ops in readers.items()
            if ops == {tflite_schema.BuiltinOperator.WHILE}}


def _tflite_rows(content):
    model = tflite_schema.Model.GetRootAs(content, 0)
    rows = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        loop_state = _loop_state_inputs(model, subgraph)
        for t in range(subgraph.TensorsLength()):
            if t in loop_state:
                continue
            tensor = subgraph.Tensors(t)
            dtype = _TFLITE_DTYPES.get(tensor.Type())
            data = model.Buffers(tensor.Buffer()).DataAsNumpy()
            if dtype is None or isinstance(data, int) or not len(data):
                continue  # not a constant, or not a weight type
            shape = tuple(int(d) for d in tensor.ShapeAsNumpy())
            if len(shape) < 1 or np.prod(shape) <= 1:
                continue
            # A sparse-encoded tensor stores only its non-zero blocks.
            values = np.frombuffer(data.tobytes(), dtype)
            rows.append(TensorSparsity(tensor.Name().decode(), shape,
                                       int(np.count_nonzero(values))))
    names = _readable_tflite_names([row.name for row in rows])
    return [dataclasses.replace(row, name=name)
            for row, name in zip(rows, names)]


def _keras_rows(model):
    masked = {}
    state = set()
    for wrapper in find_wrappers(model):
        for pruned in wrapper.pruned_weights:
            masked[id(pruned.weight)] = (pruned.mask * pruned.weight).numpy()
        state.update(id(v) for v in wrapper.state_variables())
    rows = []
    for variable in model.weights:
        if id(variable) in state:
            continue
        value = masked.get(id(variable), None)
        value = variable.numpy() if value is None else value
        if _is_weight(value) and value.dtype.kind == 'f':
            rows.append(_row(variable.path, value))
    return rows


def _tf1_checkpoint_rows(directory):
    """Trainable variables of the latest TF1 checkpoint, masks applied."""
    prefix = latest_checkpoint(directory)
    reader = tf.train.load_checkpoint(prefix)
    meta = tf1_graph.meta_graph(prefix)
    trainable = []
    for serialized in meta.collection_def['trainable_variables'].bytes_list.value:
        variable = variable_pb2.VariableDef()
        variable.ParseFromString(serialized)
        name = variable.variable_name.split(':')[0].split('/part_')[0]
        if name not in trainable:
            trainable.append(name)
    shapes = reader.get_variable_to_shape_map()
    rows = []
    for name in trainable:
        value = reader.get_tensor(name)
        mask = f'{name.rsplit("/", 1)[0]}/mask'
        if mask in shapes and tuple(shapes[mask]) == value.shape:
            value = value * reader.get_tensor(mask)
        if _is_weight(value):
            rows.append(_row(name, value))
    return rows


def _read(path, what):
    """The bytes of the file `path`, refused when empty."""
    with open(path, 'rb') as file:
        content = file.read()
    if not content:
        raise errors.ModelFileError(f'{path} is empty: not {what}')
    return content


def _is_tflite(content):
    # A TFLite flatbuffer's file identifier, after its root offset.
    return content[4:8] == b'TFL3'


def read_graph_def(path):
    """The GraphDef of a `.pb` file.

    Raises:
      ModelFileError: the file is empty, a TFLite file, or no GraphDef (or
        one cut short: TF writes `versions` after the nodes).
    """
    content = _read(path, 'a frozen GraphDef')
    if _is_tflite(content):
        raise errors.ModelFileError(
            f'{path} is a TFLite file, not a frozen GraphDef; rename it to '
            f'.tflite')
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(content)
    except message.DecodeError as error:
        raise errors.ModelFileError(
            f'{path} is not a frozen GraphDef (truncated, or another kind of '
            f'file)') from error
    if not graph_def.node or not graph_def.HasField('versions'):
        raise errors.ModelFileError(
            f'{path} is not a frozen GraphDef (truncated, or another kind of '
            f'file): it holds no complete graph')
    return graph_def


def _graph_def_file_rows(path):
    """`_graph_def_rows` of a `.pb` file.

    Raises:
      ModelFileError: see `read_graph_def`; or a constant that does not
        decode (a wrong dtype, or fewer values than its shape).
    """
    graph_def = read_graph_def(path)
    try:
        return _graph_def_rows(graph_def)
    except (TypeError, ValueError) as error:
        raise errors.ModelFileError(
            f'{path} is a damaged frozen GraphDef: {errors.one_line(error)}'
        ) from error


def _tflite_file_rows(path):
    """`_tflite_rows` of a `.tflite` file.

    Raises:
      ModelFileError: the file is empty, not a TFLite flatbuffer, or cut
        short (its offsets point past its end).
    """
    content = _read(path, 'a TFLite file')
    if not _is_tflite(content):
        raise errors.ModelFileError(
            f'{path} is not a TFLite file (no TFL3 identifier)')
    try:
        return _tflite_rows(bytearray(content))
    # A flatbuffer is read unchecked: damage shows as any error of the
    # reader (struct.error, IndexError, TypeError, ...).
    except Exception as error:  # pylint: disable=broad-except
        raise errors.ModelFileError(
            f'{path} is a damaged TFLite file (truncated?): '
            f'{errors.one_line(error)}') from error


def report(path):
    """Every weight tensor of the model at `path`, with its zeros.

    Raises:
      ModelFileError: `path` is no model file tf_prune reads, or a damaged
        one; the message names it.
    """
    if os.path.isfile(path) and path.endswith('.pb'):
        return _graph_def_file_rows(path)
    if os.path.isfile(path) and path.endswith('.tflite'):
        return _tflite_file_rows(path)
    kind = sources.kind(path)
    if kind == 'tf1_checkpoint':
        return _tf1_checkpoint_rows(path)
    if kind == 'saved_model':
        return _graph_def_rows(sources.load(path).graph_def)
    return _keras_rows(sources.load(path))


def total(rows):
    """A row summing `rows`: all weights as one tensor."""
    size = sum(row.size for row in rows)
    return TensorSparsity('total', (size,), sum(row.nonzeros for row in rows))


def format_table(rows):
    """`rows` and their total as an aligned text table."""
    lines = [('tensor', 'shape', 'non-zeros', 'sparsity')]
    for row in rows + [total(rows)]:
        shape = 'x'.join(map(str, row.shape)) if row.name != 'total' else ''
        lines.append((row.name, shape, f'{row.nonzeros}/{row.size}',
                      f'{row.sparsity:.4f}'))
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return '\n'.join(
        f'{line[0]:<{widths[0]}}  {line[1]:<{widths[1]}}  '
        f'{line[2]:>{widths[2]}}  {line[3]:>{widths[3]}}' for line in lines)
