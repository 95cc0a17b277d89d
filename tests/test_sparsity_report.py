"""sparsity_report: the same zeros whichever file holds the model."""

import json

import numpy as np
import pytest

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
