"""Writers of stripped models: frozen GraphDef, TFLite, SavedModel, `.keras`.

Each takes a Keras model (pruned or not) or a `FrozenGraph`, and writes to a
temporary file beside its output, renamed once complete, so a crash never
leaves a half-written output.
"""

import json
import os
import shutil
import warnings
import zipfile

import numpy as np
import tensorflow as tf

from tf_prune.core import atomic
from tf_prune.core import errors
from tf_prune.export import frozen as frozen_lib
from tf_prune.keras import _internals
from tf_prune.keras.strip import strip_pruning
from tf_prune.keras.wrapper import PruneWrapper
from tf_prune.keras.wrapper import find_wrappers

# What `tflite(quantize=...)` accepts.
QUANTIZE_MODES = (None, 'dynamic', 'int8', 'float16')

# Loops over time, which TFLite converts only with a static batch.
_LOOPS = ('While', 'StatelessWhile')


def frozen_graph(model, path, output_node_names=None):
    """Writes a frozen, stripped binary GraphDef.

    Args:
      model: a Keras model (pruned or not) or a `FrozenGraph`.
      path: the `.pb` file to write.
      output_node_names: the nodes to keep; default: the model's outputs.

    Returns:
      The `FrozenGraph` written.
    """
    frozen = frozen_lib.as_frozen_graph(model, output_node_names)
    # Deterministic: the same graph gives the same bytes (attr maps would
    # otherwise come out in any order), so outputs can be checksummed.
    atomic.write_bytes(
        path, frozen.graph_def.SerializeToString(deterministic=True))
    return frozen


def _representative_dataset(representative_data, input_specs, count=100):
    """The converter's calibration batches, checked against the inputs.

    Raises:
      ValueError: no data, or arrays or a dataset whose examples do not have
        the model's input shape (the converter would fail with a traceback).
    """
    if representative_data is None:
        raise ValueError("quantize='int8' needs representative_data: input "
                         "batches to calibrate the activations' ranges")
    if callable(representative_data):
        return representative_data
    data = representative_data
    if isinstance(data, np.ndarray):
        data = tf.data.Dataset.from_tensor_slices(data).batch(1)
    shapes = [spec.shape[1:] for spec in tf.nest.flatten(data.element_spec)]
    expected = [spec.shape[1:] for spec in input_specs]
    if len(shapes) != len(expected) or not all(
            shape.is_compatible_with(want)
            for shape, want in zip(shapes, expected)):
        raise ValueError(
            f'representative_data holds examples of shape '
            f'{", ".join(str(tuple(s)) for s in shapes)}; the model takes '
            f'{", ".join(str(tuple(s)) for s in expected)} (one example per '
            f'row)')

    def batches():
        for i, batch in enumerate(data):
            if i == count:
                break
            yield [tf.cast(t, tf.float32) for t in tf.nest.flatten(batch)]

    return batches


class _Converted(tf.Module):
    """What the converter is given: the function and what it computes with."""

    def __init__(self, function):
        super().__init__()
        self.function = function


def _convert(frozen, sparse, quantize, representative_data):
    function = frozen.function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function], _Converted(function))
    optimizations = []
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    if quantize:
        optimizations.append(tf.lite.Optimize.DEFAULT)
    if quantize == 'float16':
        converter.target_spec.supported_types = [tf.float16]
    if quantize == 'int8':
        converter.representative_dataset = _representative_dataset(
            representative_data, function.structured_input_signature[0])
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.optimizations = optimizations
    with warnings.catch_warnings():
        # "Statistics for quantized inputs were expected": the inputs stay
        # float by design.
        warnings.filterwarnings('ignore', 'Statistics for quantized inputs')
        try:
            return converter.convert()
        except RuntimeError as error:
            if quantize != 'int8':
                raise
            # Most often the calibration ran the model on examples it cannot
            # take (a generator's, or a dataset's of unknown shape); the
            # quantizer's own refusals end here too, and read as such.
            raise ValueError(
                f'int8 conversion failed: {errors.one_line(error)} (check '
                f'that representative_data gives examples the model can '
                f'take)') from error


def _stripped_copy(model):
    """`model` stripped, for converters that would keep the masks' products.

    Raises:
      StripError: a pruned subclassed model, which strips only in place.
    """
    if find_wrappers(model) and not _internals.is_graph_model(model) and (
            not isinstance(model, PruneWrapper)):
        raise errors.StripError(
            f'{model.name} is a pruned subclassed model, which strips in '
            f'place only; call tf_prune.strip_pruning(model) first, then '
            f'export it')
    return strip_pruning(model)


def tflite(model, path, sparse=True, quantize=None, representative_data=None,
           output_node_names=None):
    """Writes a stripped TFLite model.

    A pruned Keras model is stripped first (the file is the one
    `tflite(strip_pruning(model), ...)` writes). The input's batch dimension
    stays open, except for a Keras model whose loop over time (LSTM, GRU)
    TFLite converts only with a static batch: it gets batch size 1. A
    float16 or bfloat16 model (or mixed precision) is written computing in
    float32, as TFLite's builtin kernels do; `quantize='float16'` stores its
    weights in float16 again.

    Args:
      model: a Keras model (pruned or not) or a `FrozenGraph`.
      path: the `.tflite` file to write.
      sparse: store weights with many zeros in TFLite's sparse tensor format
        (the file shrinks; a DENSIFY op restores them at load). A dense
        tensor of zeros costs as much as any other (contrib issue #32805).
      quantize: None (float32); 'dynamic' (int8 weights, float compute);
        'int8' (int8 weights and activations, float inputs and outputs;
        needs `representative_data`); 'float16' (float16 weights).
      representative_data: for 'int8': a numpy array of inputs, a
        `tf.data.Dataset` of input batches, or a generator function as the
        TFLite converter takes; its first 100 examples calibrate.
      output_node_names: see `frozen_graph`.

    Returns:
      The size of the file in bytes.

    Raises:
      StripError: a pruned subclassed model (strip it first).
      ValueError: an unknown `quantize`; 'int8' without data, or with data
        not shaped as the model's inputs (or that the calibration cannot
        run the model on); 'dynamic' or 'int8' with `sparse`
        (LiteRT's XNNPACK delegate, on by default, cannot run sparse int8
        kernels, so such a file fails at load; and sparse int8 Dense
        kernels convert to wrong outputs).
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f'quantize={quantize!r}; use one of '
                         f'{", ".join(map(str, QUANTIZE_MODES))}')
    if quantize in ('dynamic', 'int8') and sparse:
        raise ValueError(
            f"quantize={quantize!r} with sparse=True writes sparse int8 "
            f"kernels that LiteRT's default XNNPACK delegate cannot run (and "
            f"int8 ones that compute wrong outputs on a pruned Dense layer); "
            f"use sparse=False, or quantize='float16'")
    if not isinstance(model, frozen_lib.FrozenGraph):
        model = _stripped_copy(model)
    frozen = frozen_lib.as_frozen_graph(model, output_node_names)
    if not isinstance(model, frozen_lib.FrozenGraph) and any(
            node.op in _LOOPS for node in frozen.graph_def.node):
        frozen = frozen_lib.freeze(model, output_node_names, batch_size=1)
    content = _convert(frozen.in_float32(), sparse, quantize,
                       representative_data)
    atomic.write_bytes(path, content)
    return len(content)


class _Serving(tf.Module):
    """What a SavedModel written here holds: the stripped graph's function."""

    def __init__(self, function):
        super().__init__()
        self.serve = function


def saved_model(model, path, output_node_names=None):
    """Writes a stripped SavedModel with a `serving_default` signature.

    The signature takes the inputs by name and returns a dict keyed by the
    output names; the weights are constants of its graph.

    Args:
      model: a Keras model (pruned or not) or a `FrozenGraph`.
      path: the directory to write.
      output_node_names: see `frozen_graph`.

    Returns:
      The `FrozenGraph` written.

    Raises:
      OSError: the directory cannot be written (a full disk, say), as the
        other writers raise it.
    """
    frozen = frozen_lib.as_frozen_graph(model, output_node_names)
    function = frozen.function()
    try:
        with atomic.atomic_output(path) as temporary:
            tf.saved_model.save(_Serving(function), temporary,
                                signatures={'serving_default': function})
    except tf.errors.OpError as error:
        # TF's file errors read '<file>; <reason>', the file a temporary.
        reason = errors.one_line(error).rsplit('; ', 1)[-1]
        raise OSError(None, reason, str(path)) from error
    return frozen


# Every entry of a `.keras` file written here carries this time (the zip
# format's earliest, as reproducible builds use), and so does the save date
# Keras records in metadata.json: identical models give identical files.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SAVE_DATE = '1980-01-01@00:00:00'  # Keras' format for `date_saved`


def _zip_entry(info):
    """`info` with no time or origin of its own."""
    entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
    entry.compress_type = info.compress_type
    entry.external_attr = info.external_attr
    return entry


def _renumber_shared_objects(config, numbers):
    """The config with its `shared_object_id`s numbered 0, 1, ... in order.

    Keras numbers an object shared by several layers with its `id()`, a
    memory address that differs between processes; only equality matters
    when the file is loaded.
    """
    if isinstance(config, list):
        return [_renumber_shared_objects(item, numbers) for item in config]
    if not isinstance(config, dict):
        return config
    renumbered = {}
    for key, value in config.items():
        if key == 'shared_object_id':
            value = numbers.setdefault(value, len(numbers))
        renumbered[key] = _renumber_shared_objects(value, numbers)
    return renumbered


def _reproducible_keras_zip(source, path):
    """Copies the `.keras` file `source` to `path`, reproducibly.

    Entries keep their order, content and compression; their times are
    `_ZIP_TIME`, metadata.json's save date `_SAVE_DATE` (Keras reads it
    only to show it, in `KerasFileEditor`), and config.json's shared-object
    ids are numbered in order instead of by memory address.
    """
    with zipfile.ZipFile(source) as original, \
            zipfile.ZipFile(path, 'w') as copy:
        for info in original.infolist():
            entry = _zip_entry(info)
            if info.filename == 'metadata.json':
                metadata = json.loads(original.read(info))
                metadata['date_saved'] = _SAVE_DATE
                copy.writestr(entry, json.dumps(metadata))
                continue
            if info.filename == 'config.json':
                config = json.loads(original.read(info))
                copy.writestr(entry, json.dumps(_renumber_shared_objects(
                    config, {})))
                continue
            # Entries this large need zip64 headers, asked for up front.
            large = info.file_size >= zipfile.ZIP64_LIMIT
            with original.open(info) as reader, copy.open(
                    entry, 'w', force_zip64=large) as writer:
                shutil.copyfileobj(reader, writer)


def keras_file(model, path):
    """Writes the stripped model as a `.keras` file.

    The same model gives the same bytes (entry times and the recorded save
    date are fixed), so outputs can be checksummed.

    Args:
      model: a Keras model (pruned or not).
      path: the file to write; it must end in `.keras`.
    """
    if not str(path).endswith('.keras'):
        raise ValueError(f'{path}: a Keras model file must end in .keras')
    stripped = strip_pruning(model)
    with atomic.atomic_output(path) as temporary:
        # Keras writes its own first, beside the output, under a name that
        # extends the temporary's random part: a killed run's leftover is
        # then one `atomic_output` removes as stale.
        saved = temporary[:-len('.keras')] + '_keras.keras'
        try:
            stripped.save(saved)
            _reproducible_keras_zip(saved, temporary)
        finally:
            if os.path.exists(saved):
                os.remove(saved)
