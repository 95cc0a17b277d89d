"""sparsity_report: the same zeros whichever file holds the model."""

import dataclasses
import json
import pathlib

import keras
import numpy as np
import pytest
from tensorflow.lite.python import schema_py_generated as tflite_schema

import tf_prune
from tests.conftest import GOLDEN_DIR
from tf_prune import export
from tf_prune import sparsity_report

FIXTURE = GOLDEN_DIR / 'conv'


def test_contrib_checkpoint_and_its_stripped_graph_agree(tmp_path):
    manifest = json.loads((FIXTURE / 'manifest.json').read_text())
    from_checkpoint = sparsity_report.report(str(FIXTURE))
    export.frozen_graph(export.freeze_checkpoint(str(FIXTURE), ['probabilities']),
                        tmp_path / 'stripped.pb')
    from_graph = sparsity_report.report(str(tmp_path / 'stripped.pb'))

    kernels = {r.name: r for r in from_checkpoint if r.name.endswith('/weights')}
    for mask, sparsity in zip(manifest['masks'], manifest['mask_sparsity']):
        layer = mask.split('/')[0]
        assert kernels[f'{layer}/weights'].sparsity == pytest.approx(sparsity, abs=1e-6)
    assert sorted((r.nonzeros, r.size) for r in from_checkpoint) == sorted(
        (r.nonzeros, r.size) for r in from_graph)
    total = sparsity_report.total(from_graph)
    assert total.size == sum(r.size for r in from_graph)
    assert 0.5 < total.sparsity < min(manifest['mask_sparsity'][:3])


def test_table_lists_every_tensor_and_the_total():
    rows = [sparsity_report.TensorSparsity('fc/kernel', (4, 5), 2),
            sparsity_report.TensorSparsity('fc/bias', (5,), 5)]
    lines = sparsity_report.format_table(rows).splitlines()
    assert [line.split() for line in lines] == [
        ['tensor', 'shape', 'non-zeros', 'sparsity'],
        ['fc/kernel', '4x5', '2/20', '0.9000'],
        ['fc/bias', '5', '5/5', '0.0000'],
        ['total', '7/25', '0.7200']]
    assert np.isclose(sparsity_report.total(rows).sparsity, 0.72)


def test_tflite_names_are_shortened_and_told_apart():
    names = ['m/fc1/MatMul;m/fc1/Relu;m/fc1/BiasAdd', 'm/fc1/Relu;m/fc1/BiasAdd',
             'm/conv/Relu;m/conv/BiasAdd;m/conv/convolution',
             'm/conv/Relu;m/conv/BiasAdd;m/conv/convolution1']
    assert sparsity_report._readable_tflite_names(names) == [
        'fc1/MatMul', 'fc1/Relu', 'conv/Relu (1 of 2)', 'conv/Relu (2 of 2)']
    assert sparsity_report._readable_tflite_names(['a/b;c']) == ['a/b']


def test_pruning_state_is_never_listed_as_a_weight(tmp_path):
    model = tf_prune.prune(keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(5, name='fc')]),
        'prune_option=first_order_gradient')
    model.save(tmp_path / 'pruned.keras')
    names = [row.name for row in sparsity_report.report(
        str(tmp_path / 'pruned.keras'))]
    assert names == ['fc/kernel', 'fc/bias']


def test_a_loops_zero_initial_state_is_not_a_weight(tmp_path):
    model = keras.Sequential([
        keras.Input((6, 4)), keras.layers.LSTM(8, name='lstm'),
        keras.layers.Dense(3, bias_initializer='ones', name='fc')])
    export.tflite(model, tmp_path / 'lstm.tflite', sparse=False)
    rows = sparsity_report.report(str(tmp_path / 'lstm.tflite'))
    # The LSTM's kernels, bias and the Dense kernel and bias; the loop's
    # all-zero initial states (shaped by the batch of 1) are left out.
    assert rows and all(row.nonzeros > 0 for row in rows), rows


# N:M checks (report(path, n_of_m)).

def test_satisfies_n_of_m_counts_runs_along_the_axis():
    # Along axis -2 (TF): columns [1, 1, 0, 0 | 1, 1] and [1, 0, 1, 1 | 0, 0].
    values = np.array([[1, 1], [1, 0], [0, 1], [0, 1], [1, 0], [1, 0]])
    assert not sparsity_report.satisfies_n_of_m(values, 2, 4)  # 3 in a run
    assert sparsity_report.satisfies_n_of_m(values, 3, 4)
    # A shorter last run may hold n too, not more: [1, 1] of 2 passes 2:4,
    # [1, 1, 1] of 3 fails it.
    assert sparsity_report.satisfies_n_of_m(np.ones((6, 1)), 2, 4) is False
    assert sparsity_report.satisfies_n_of_m(
        np.array([[1], [1], [0], [0], [1], [1]]), 2, 4)
    assert not sparsity_report.satisfies_n_of_m(
        np.array([[1], [1], [0], [0], [1], [1], [1]]), 2, 4)
    # Along the last axis (TFLite): the rows of the same values.
    assert sparsity_report.satisfies_n_of_m(
        values.T, 3, 4, axis=sparsity_report.TFLITE_INPUT_AXIS)
    assert not sparsity_report.satisfies_n_of_m(
        values.T, 2, 4, axis=sparsity_report.TFLITE_INPUT_AXIS)
    # A run longer than the axis: the whole axis is one run.
    assert sparsity_report.satisfies_n_of_m(np.eye(3), 1, 2**40)


def _nm_model():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((6, 6, 6))
    x = keras.layers.Conv2D(4, 3, name='conv')(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name='fc')(x))


@pytest.mark.parametrize('spec, checks', [
    ('nm_sparsity=2:4', {(2, 4): True, (1, 4): False, (2, 8): False}),
    ('nm_sparsity=1:4', {(2, 4): True, (1, 4): True, (1, 8): False}),
    ('target_sparsity=0.0', {(2, 4): False, (3, 4): False}),
])
@pytest.mark.parametrize('kind', ['.keras', '.pb', '.tflite'])
def test_report_checks_n_of_m_in_every_file_kind(tmp_path, spec, checks, kind):
    model = tf_prune.prune(_nm_model(), spec, one_shot=True)
    path = str(tmp_path / f'model{kind}')
    {'.keras': lambda: model.save(path),
     '.pb': lambda: export.frozen_graph(model, path),
     '.tflite': lambda: export.tflite(model, path)}[kind]()
    for n_of_m, expected in checks.items():
        rows = sparsity_report.report(path, n_of_m)
        kernels = [row.n_of_m for row in rows if len(row.shape) >= 2]
        assert kernels == [expected] * 2, (n_of_m, rows)
        assert all(row.n_of_m is None for row in rows if len(row.shape) < 2)
        assert sparsity_report.total(rows).n_of_m is expected
    assert all(row.n_of_m is None for row in sparsity_report.report(path))


def _tflite_tensors(path):
    """{shape: (tensor, stored values)} of a TFLite file's weight tensors."""
    content = bytearray(pathlib.Path(path).read_bytes())
    model = tflite_schema.Model.GetRootAs(content, 0)
    subgraph = model.Subgraphs(0)
    tensors = {}
    for t in range(subgraph.TensorsLength()):
        tensor = subgraph.Tensors(t)
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if tensor.Type() == 0 and not isinstance(data, int) and len(data):
            tensors[tuple(tensor.ShapeAsNumpy())] = (
                tensor, np.frombuffer(data.tobytes(), np.float32))
    return tensors


@pytest.mark.parametrize('spec, formats', [
    # Each row's non-zeros in a CSR list: [dense, sparse] levels.
    ('nm_sparsity=2:4', {(4, 3, 3, 6): 4, (3, 64): 2}),
    # Blocks of 4 along the FullyConnected's input axis: its kernel is
    # stored in TFLite's 1x4 block format, [dense, sparse, dense(4)].
    ('block_height=4,target_sparsity=0.75', {(3, 64): 3}),
])
def test_sparse_tflite_tensors_decode_to_their_dense_values(tmp_path, spec,
                                                             formats):
    model = tf_prune.prune(_nm_model(), spec, one_shot=True)
    export.tflite(model, tmp_path / 'sparse.tflite')
    export.tflite(model, tmp_path / 'dense.tflite', sparse=False)
    sparse, dense = (_tflite_tensors(tmp_path / f'{name}.tflite')
                     for name in ('sparse', 'dense'))
    for shape, levels in formats.items():
        tensor, stored = sparse[shape]
        assert tensor.Sparsity().DimMetadataLength() == levels
        assert stored.size < np.prod(shape)
        decoded = sparsity_report._dense_tflite_values(
            tensor.Sparsity(), shape, stored)
        np.testing.assert_array_equal(decoded, dense[shape][1].reshape(shape))


def test_table_has_a_column_for_the_n_of_m_check():
    rows = [sparsity_report.TensorSparsity('fc/kernel', (4, 5), 10, True),
            sparsity_report.TensorSparsity('conv/kernel', (3, 3, 4, 2), 36,
                                           False),
            sparsity_report.TensorSparsity('fc/bias', (5,), 5)]
    lines = sparsity_report.format_table(rows, (2, 4)).splitlines()
    assert [line.split() for line in lines] == [
        ['tensor', 'shape', 'non-zeros', 'sparsity', '2:4'],
        ['fc/kernel', '4x5', '10/20', '0.5000', 'yes'],
        ['conv/kernel', '3x3x4x2', '36/72', '0.5000', 'no'],
        ['fc/bias', '5', '5/5', '0.0000', '-'],
        ['total', '51/97', '0.4742', 'no']]
    assert sparsity_report.format_table(rows) == sparsity_report.format_table(
        [dataclasses.replace(row, n_of_m=None) for row in rows])
