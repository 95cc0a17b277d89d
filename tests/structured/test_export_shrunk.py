"""A shrunk model through the export writers: each file, run as serving
code runs it (LiteRT for TFLite, TensorFlow for the GraphDef and the
SavedModel, Keras for `.keras`), computes what the shrunk and the masked
model compute, and is smaller than the dense model's file of its format.
`channel_report` reads the files back."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tests.helpers.load_plain import run_tflite
from tf_prune import export
from tf_prune import structured

L = keras.layers
# The writers, and the file name each writes for a model.
WRITERS = {
    'graphdef': (export.frozen_graph, 'model.pb'),
    'tflite': (export.tflite, 'model.tflite'),
    'saved_model': (export.saved_model, 'saved_model'),
    'keras': (export.keras_file, 'model.keras'),
}
# Outputs within this fraction of their range (max - min).
TOLERANCE = 1e-5


def _cnn():
    """BatchNormalization, a residual Add, a depthwise convolution and a
    Dense head: channel groups that couple layers."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name='image')
    x = L.Conv2D(16, 3, padding='same', use_bias=False, name='stem')(inputs)
    x = L.BatchNormalization(name='stem_bn')(x)
    x = L.ReLU(name='stem_relu')(x)
    y = L.Conv2D(16, 3, padding='same', activation='relu', name='expand')(x)
    y = L.DepthwiseConv2D(3, padding='same', activation='relu',
                          name='depthwise')(y)
    y = L.Conv2D(16, 1, name='project')(y)
    x = L.Add(name='residual')([x, y])
    x = L.Conv2D(32, 3, strides=2, padding='same', activation='relu',
                 name='down')(x)
    x = L.GlobalAveragePooling2D(name='pool')(x)
    x = L.Dense(32, activation='relu', name='fc')(x)
    model = keras.Model(inputs, L.Dense(10, name='logits')(x), name='cnn')
    # Biases and normalization statistics away from their initial 0 and 1,
    # so that the removed channels' slices of them matter.
    rng = np.random.default_rng(1)
    for variable in model.weights:
        if len(variable.shape) == 1:
            variable.assign(rng.uniform(0.5, 1.5, variable.shape)
                            .astype(np.float32))
    return model


def _size(path):
    if os.path.isdir(path):
        return sum(f.stat().st_size for f in path.rglob('*') if f.is_file())
    return path.stat().st_size


def _run(path, output_format, batch):
    """The outputs of the file `path` for `batch`."""
    if output_format == 'graphdef':
        graph_def = tf.compat.v1.GraphDef()
        graph_def.ParseFromString(path.read_bytes())
        graph = tf.Graph()
        with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
            tf.graph_util.import_graph_def(graph_def, name='')
            # Nodes named after the model's input and output.
            return session.run('logits:0', {'image:0': batch})
    if output_format == 'tflite':
        return run_tflite(path, batch)
    if output_format == 'saved_model':
        serve = tf.saved_model.load(str(path)).signatures['serving_default']
        return serve(image=tf.constant(batch))['logits'].numpy()
    return keras.ops.convert_to_numpy(keras.models.load_model(path)(batch))


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """The dense, masked and shrunk models, their outputs for a batch, and
    the files of the shrunk and the dense model in every format, and the
    shrunk files' outputs."""
    root = tmp_path_factory.mktemp('shrunk')
    dense = _cnn()
    masked = tf_prune.prune(dense, 'structure=channel,target_sparsity=0.5',
                            one_shot=True)
    shrunk = tf_prune.shrink(masked)
    batch = np.random.default_rng(2).standard_normal(
        (8, 16, 16, 3)).astype(np.float32)
    files = {}
    for name, model in (('shrunk', shrunk), ('dense', dense)):
        (root / name).mkdir()
        for output_format, (write, filename) in WRITERS.items():
            files[name, output_format] = root / name / filename
            write(model, files[name, output_format])
    return {
        'dense': dense, 'masked': masked, 'shrunk': shrunk, 'files': files,
        'outputs': {output_format: _run(files['shrunk', output_format],
                                        output_format, batch)
                    for output_format in WRITERS},
        'expected': {
            name: keras.ops.convert_to_numpy(model(batch, training=False))
            for name, model in (('shrunk', shrunk), ('masked', masked))},
    }


def test_shrink_removes_channels_from_the_coupled_layers(exported):
    dense, masked, shrunk = (exported[name] for name in
                             ('dense', 'masked', 'shrunk'))
    removed = structured.masked_channels(masked)
    groups = structured.find_channel_groups(masked).groups
    # Half of every group's removable channels go: the stem's channels
    # through its BatchNormalization, the residual Add and the projection;
    # the expansion's through the depthwise convolution.
    assert {groups[g].name for g in removed} == {'stem', 'expand', 'down',
                                                 'fc'}
    for group_id, channels in removed.items():
        assert len(channels) == len(groups[group_id].removable) // 2
    assert [(layer.name, type(layer)) for layer in shrunk.layers] == [
        (layer.name, type(layer)) for layer in dense.layers]
    assert shrunk.get_layer('stem_bn').gamma.shape == (8,)
    assert shrunk.get_layer('project').kernel.shape == (1, 1, 8, 8)
    assert shrunk.get_layer('depthwise').kernel.shape == (3, 3, 8, 1)
    assert shrunk.get_layer('logits').kernel.shape == (16, 10)
    assert shrunk.count_params() < dense.count_params() / 3


@pytest.mark.parametrize('output_format', list(WRITERS))
@pytest.mark.parametrize('reference', ['shrunk', 'masked'])
def test_file_computes_what_the_shrunk_and_masked_model_compute(
        exported, output_format, reference):
    expected = exported['expected'][reference]
    outputs = exported['outputs'][output_format]
    assert outputs.shape == expected.shape
    error = np.abs(outputs - expected).max()
    assert error <= TOLERANCE * np.ptp(expected), (error, np.ptp(expected))


@pytest.mark.parametrize('output_format', list(WRITERS))
def test_file_is_smaller_than_the_dense_models(exported, output_format):
    files = exported['files']
    shrunk = _size(files['shrunk', output_format])
    dense = _size(files['dense', output_format])
    assert shrunk < dense, (shrunk, dense)


@pytest.mark.parametrize('output_format', ['graphdef', 'saved_model', 'keras'])
def test_channel_report_reads_each_shrunk_file_by_keras_paths(
        exported, output_format):
    masked = exported['masked']
    report = structured.channel_report(
        masked, exported['files']['shrunk', output_format])
    assert report == structured.channel_report(masked, exported['shrunk'])


def test_channel_report_counts_what_cost_counts(exported):
    dense, masked, shrunk = (exported[name] for name in
                             ('dense', 'masked', 'shrunk'))
    report = structured.channel_report(masked)
    assert (report.parameters.before, report.parameters.after) == (
        dense.count_params(), shrunk.count_params())
    assert (report.flops.before, report.flops.after) == (
        structured.cost.flops(dense), structured.cost.flops(shrunk))
    layers = [layer for layer in dense.layers if layer.weights]
    assert [row.layer for row in report.layers] == [
        layer.name for layer in layers]
    for row, layer in zip(report.layers, layers):
        assert row.kind == type(layer).__name__
        assert (row.channels.before, row.channels.after) == (
            layer.output.shape[-1],
            shrunk.get_layer(layer.name).output.shape[-1])
        assert (row.parameters.before, row.parameters.after) == (
            layer.count_params(), shrunk.get_layer(layer.name).count_params())
    assert sum(row.flops.after for row in report.layers) == report.flops.after


def test_channel_report_refuses_files_it_cannot_check(exported):
    masked, files = exported['masked'], exported['files']
    with pytest.raises(tf_prune.ModelFileError, match='is a TFLite file'):
        structured.channel_report(masked, files['shrunk', 'tflite'])
    with pytest.raises(ValueError, match=(
            r'stem/kernel is 3x3x3x16 in .*model.keras, but 3x3x3x8 in the '
            r'model shrunk from cnn: .* is not that model')):
        structured.channel_report(masked, files['dense', 'keras'])
    with pytest.raises(structured.NotChannelPruned,
                       match='cnn has no channel masks'):
        structured.channel_report(exported['dense'])
