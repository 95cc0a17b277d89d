"""How many zeros each weight tensor of a model file holds.

Reads a frozen GraphDef (.pb), a TFLite file (sparse-encoded tensors
included), a `.keras` file, a SavedModel, or a checkpoint directory (TF1 or
a tf_prune training directory); a pruned model's weights are counted as
`mask * weight`. The total is over every weight tensor, so biases and
layers left dense lower it: a model pruned to 90% in its kernels may show
far less in all (contrib issue #32766).

Asked for N:M (`report(path, n_of_m=(2, 4))`), each tensor of rank 2 or
more is also checked for at most N non-zeros in every M consecutive values
along its input-channel axis: the last axis in a TFLite file (TFLite's
layouts: Conv2D `[out, h, w, in]`, FullyConnected `[out, in]`), the second
to last in TF and Keras tensors (`[..., in, out]`).
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
# TFLite's sparse index vectors, by their type in the SparseIndexVector union.
_INDEX_VECTORS = {
    tflite_schema.SparseIndexVector.Int32Vector: tflite_schema.Int32Vector,
    tflite_schema.SparseIndexVector.Uint16Vector: tflite_schema.Uint16Vector,
    tflite_schema.SparseIndexVector.Uint8Vector: tflite_schema.Uint8Vector,
}
# The input-channel axis of weight tensors, in TF's layouts and in TFLite's.
TF_INPUT_AXIS = -2
TFLITE_INPUT_AXIS = -1


@dataclasses.dataclass(frozen=True)
class TensorSparsity:
    """One weight tensor's zeros.

    Attributes:
      name: the tensor's name in the file.
      shape: its dense shape.
      nonzeros: how many of its entries are not zero.
      n_of_m: when the report was asked for N:M, whether the tensor passes
        `satisfies_n_of_m` along its input-channel axis; None otherwise,
        and for tensors of rank below 2.
    """
    name: str
    shape: tuple
    nonzeros: int
    n_of_m: object = None

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def sparsity(self):
        return 1.0 - self.nonzeros / self.size if self.size else 0.0


def satisfies_n_of_m(values, n, m, axis=TF_INPUT_AXIS):
    """Whether at most n of every m consecutive values along `axis` are not 0.

    Runs of m start at position 0 of the axis, for each position of the
    other axes; a shorter last run may hold n non-zeros too, as tfmot's
    `check_sparsity_m_by_n` counts it.

    Args:
      values: an array of rank 2 or more.
      n: the non-zeros allowed per run, 1 <= n < m.
      m: the run length.
      axis: the input-channel axis (`TF_INPUT_AXIS` or `TFLITE_INPUT_AXIS`).

    Returns:
      A bool.
    """
    rows = np.moveaxis(np.asarray(values) != 0, axis, -1)
    rows = rows.reshape(-1, rows.shape[-1]).astype(np.int64)
    if not rows.size:
        return True
    counts = np.add.reduceat(rows, np.arange(0, rows.shape[1], m), axis=1)
    return bool((counts <= n).all())


def _n_of_m_check(value, n_of_m, axis):
    """`satisfies_n_of_m`, or None when not asked or of rank below 2."""
    if n_of_m is None or value.ndim < 2:
        return None
    return satisfies_n_of_m(value, *n_of_m, axis=axis)


def _row(name, value, n_of_m=None):
    value = np.asarray(value)
    return TensorSparsity(name, tuple(value.shape),
                          int(np.count_nonzero(value)),
                          _n_of_m_check(value, n_of_m, TF_INPUT_AXIS))


def _is_weight(value):
    return value.dtype.kind in 'fiu' and value.ndim >= 1 and value.size > 1


def _graph_def_rows(graph_def, n_of_m=None):
    rows = []
    for node in graph_def.node:
        if node.op == 'Const' and tf.as_dtype(
                node.attr['dtype'].type).is_floating:
            value = tf.make_ndarray(node.attr['value'].tensor)
            if _is_weight(value):
                rows.append(_row(node.name, value, n_of_m))
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


def _index_vector(kind, table):
    """The values of one of TFLite's sparse index vectors, as int64."""
    vector = _INDEX_VECTORS[kind]()
    vector.Init(table.Bytes, table.Pos)
    return vector.ValuesAsNumpy().astype(np.int64)


def _children(index, metadata):
    """One level of TFLite's sparse format, for every entry at once.

    Args:
      index: each entry's position in this level's arrays.
      metadata: the level's `DimensionMetadata`.

    Returns:
      (parent, coordinate, child index): per child, the entry it descends
      from, its coordinate along the level's dimension and its position in
      the next level's arrays, in TFLite's traversal order.
    """
    if metadata.Format() == tflite_schema.DimensionType.DENSE:
        size = metadata.DenseSize()
        parent = np.repeat(np.arange(len(index)), size)
        coordinate = np.tile(np.arange(size), len(index))
        return parent, coordinate, index[parent] * size + coordinate
    segments = _index_vector(metadata.ArraySegmentsType(),
                             metadata.ArraySegments())
    indices = _index_vector(metadata.ArrayIndicesType(),
                            metadata.ArrayIndices())
    starts, counts = segments[index], segments[index + 1] - segments[index]
    parent = np.repeat(np.arange(len(index)), counts)
    child = starts[parent] + np.arange(counts.sum()) - np.repeat(
        np.cumsum(counts) - counts, counts)
    return parent, indices[child], child


def _dense_tflite_values(sparsity, shape, values):
    """The dense array of a tensor stored in TFLite's sparse format.

    The levels are walked in traversal order, as TFLite's FormatConverter
    walks them, and the leaves, in order, are the stored values. Levels
    past the tensor's rank are blocks: each refines the coordinate of the
    dimension its `block_map` entry names.

    Raises:
      ValueError, IndexError: the format does not describe `shape` and
        `values` (a damaged file).
    """
    rank = len(shape)
    order = sparsity.TraversalOrderAsNumpy()
    block_map = sparsity.BlockMapAsNumpy()
    index = np.zeros(1, np.int64)
    coordinates, sizes = [], []
    for level in range(sparsity.DimMetadataLength()):
        metadata = sparsity.DimMetadata(level)
        parent, coordinate, index = _children(index, metadata)
        coordinates = [c[parent] for c in coordinates] + [coordinate]
        sizes.append(metadata.DenseSize())
    if len(coordinates) != len(order) or len(index) != len(values):
        raise ValueError(
            f'sparse tensor of shape {shape} holds {len(values)} values for '
            f'{len(index)} entries in {len(coordinates)} levels')
    dims = [None] * rank
    for level, dim in enumerate(order[:rank]):
        dims[dim] = coordinates[level]
    for level in range(rank, len(order)):
        dim = block_map[order[level] - rank]
        dims[dim] = dims[dim] * sizes[level] + coordinates[level]
    dense = np.zeros(shape, values.dtype)
    dense[tuple(dims)] = values
    return dense


def _tflite_n_of_m(tensor, shape, values, n_of_m):
    """`_n_of_m_check` of a TFLite tensor, decoded when stored sparse."""
    if n_of_m is None or len(shape) < 2:
        return None
    sparsity = tensor.Sparsity()
    dense = (values.reshape(shape) if sparsity is None
             else _dense_tflite_values(sparsity, shape, values))
    return satisfies_n_of_m(dense, *n_of_m, axis=TFLITE_INPUT_AXIS)


def _tflite_rows(content, n_of_m=None):
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
            rows.append(TensorSparsity(
                tensor.Name().decode(), shape, int(np.count_nonzero(values)),
                _tflite_n_of_m(tensor, shape, values, n_of_m)))
    names = _readable_tflite_names([row.name for row in rows])
    return [dataclasses.replace(row, name=name)
            for row, name in zip(rows, names)]


def _keras_rows(model, n_of_m=None):
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
            rows.append(_row(variable.path, value, n_of_m))
    return rows


def _tf1_checkpoint_rows(directory, n_of_m=None):
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
            rows.append(_row(name, value, n_of_m))
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


def _graph_def_file_rows(path, n_of_m=None):
    """`_graph_def_rows` of a `.pb` file.

    Raises:
      ModelFileError: see `read_graph_def`; or a constant that does not
        decode (a wrong dtype, or fewer values than its shape).
    """
    graph_def = read_graph_def(path)
    try:
        return _graph_def_rows(graph_def, n_of_m)
    except (TypeError, ValueError) as error:
        raise errors.ModelFileError(
            f'{path} is a damaged frozen GraphDef: {errors.one_line(error)}'
        ) from error


def _tflite_file_rows(path, n_of_m=None):
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
        return _tflite_rows(bytearray(content), n_of_m)
    # A flatbuffer is read unchecked: damage shows as any error of the
    # reader (struct.error, IndexError, TypeError, ...).
    except Exception as error:  # pylint: disable=broad-except
        raise errors.ModelFileError(
            f'{path} is a damaged TFLite file (truncated?): '
            f'{errors.one_line(error)}') from error


def report(path, n_of_m=None):
    """Every weight tensor of the model at `path`, with its zeros.

    Args:
      path: a model file or directory (see the module's docstring).
      n_of_m: None, or (n, m) with 1 <= n < m: also check each tensor of
        rank 2 or more for N:M sparsity (`TensorSparsity.n_of_m`).

    Returns:
      A list of `TensorSparsity`, in the file's order.

    Raises:
      ModelFileError: `path` is no model file tf_prune reads, or a damaged
        one; the message names it.
    """
    if os.path.isfile(path) and path.endswith('.pb'):
        return _graph_def_file_rows(path, n_of_m)
    if os.path.isfile(path) and path.endswith('.tflite'):
        return _tflite_file_rows(path, n_of_m)
    kind = sources.kind(path)
    if kind == 'tf1_checkpoint':
        return _tf1_checkpoint_rows(path, n_of_m)
    if kind == 'saved_model':
        return _graph_def_rows(sources.load(path).graph_def, n_of_m)
    return _keras_rows(sources.load(path), n_of_m)


def total(rows):
    """A row summing `rows`: all weights as one tensor.

    Its `n_of_m` is whether every checked tensor passes (None when none was
    checked).
    """
    size = sum(row.size for row in rows)
    checked = [row.n_of_m for row in rows if row.n_of_m is not None]
    return TensorSparsity('total', (size,), sum(row.nonzeros for row in rows),
                          all(checked) if checked else None)


def _yes_no(value):
    return '-' if value is None else ('yes' if value else 'no')


def format_table(rows, n_of_m=None):
    """`rows` and their total as an aligned text table.

    Args:
      rows: `TensorSparsity` rows.
      n_of_m: the (n, m) the rows were checked for, which adds a column
        headed `n:m`: yes, no, or - for a tensor of rank below 2.

    Returns:
      The table, one line per row and a header.
    """
    header = ('tensor', 'shape', 'non-zeros', 'sparsity')
    if n_of_m is not None:
        header += ('%d:%d' % tuple(n_of_m),)
    lines = [header]
    for row in rows + [total(rows)]:
        shape = 'x'.join(map(str, row.shape)) if row.name != 'total' else ''
        line = (row.name, shape, f'{row.nonzeros}/{row.size}',
                f'{row.sparsity:.4f}')
        if n_of_m is not None:
            line += (_yes_no(row.n_of_m),)
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    # Names and shapes to the left, numbers to the right.
    aligns = ['<', '<'] + ['>'] * (len(header) - 2)
    return '\n'.join(
        '  '.join(f'{cell:{align}{width}}'
                  for cell, align, width in zip(line, aligns, widths))
        for line in lines)
