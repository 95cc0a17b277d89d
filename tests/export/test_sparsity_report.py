"""sparsity_report: the same zeros whichever file holds the model."""

import json

import keras
import numpy as np
import pytest

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
