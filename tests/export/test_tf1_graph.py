"""contrib's TF1 strip, on its real checkpoint and on the graphs of contrib's
strip test, built with tf_prune.compat.v1."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tests.conftest import GOLDEN_DIR
from tests.helpers import tf1_graphs
from tf_prune import export
from tf_prune.export import tf1_graph

FIXTURE = GOLDEN_DIR / 'conv'


def _pruning_state_nodes(graph_def):
    return [n.name for n in graph_def.node
            if n.name.endswith(('mask', 'threshold', 'last_mask_update_step'))
            or n.op in ('VariableV2', 'VarHandleOp', 'Assign')]


def test_contrib_checkpoint_strips_to_contribs_graph():
    manifest = json.loads((FIXTURE / 'manifest.json').read_text())
    frozen = export.freeze_checkpoint(str(FIXTURE), manifest['output_node_names'])
    contrib = tf.compat.v1.GraphDef()
    contrib.ParseFromString((FIXTURE / 'contrib_stripped.pb').read_bytes())

    assert sorted(n.name for n in frozen.graph_def.node) == sorted(
        n.name for n in contrib.node)
    ours = {n.name: n for n in frozen.graph_def.node}
    for node in contrib.node:
        assert ours[node.name].op == node.op
        if node.op == 'Const':
            np.testing.assert_array_equal(
                tf.make_ndarray(ours[node.name].attr['value'].tensor),
                tf.make_ndarray(node.attr['value'].tensor))
    assert not _pruning_state_nodes(frozen.graph_def)
    for name in manifest['contrib_masked_weight_consts']:
        assert ours[name].op == 'Const'
    assert frozen.inputs == (manifest['input_node'],)

    inputs = np.load(FIXTURE / 'input.npy')
    outputs = frozen.function()(tf.constant(inputs))['probabilities']
    np.testing.assert_allclose(outputs, np.load(FIXTURE / 'expected_output.npy'),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize('partitions', [0, 3])
@pytest.mark.parametrize('kind', sorted(tf1_graphs.MODELS))
def test_contrib_test_models_strip_with_equal_outputs(tmp_path, kind, partitions):
    batch, expected, mask_count = tf1_graphs.write_checkpoint(
        str(tmp_path), kind, partitions)
    unstripped = tf1_graph.graph_def_from_checkpoint(
        str(tmp_path), [tf1_graphs.OUTPUT])
    masks_frozen = {n.name.split('/part_')[0] for n in unstripped.node
                    if n.name.endswith('mask') or '/mask/part_' in n.name}
    assert len(masks_frozen) == mask_count > 0

    frozen = export.freeze_checkpoint(str(tmp_path), [tf1_graphs.OUTPUT])
    assert not _pruning_state_nodes(frozen.graph_def)
    assert not [n for n in frozen.graph_def.node
                if re.search(r'/mask(/part_\d+)?($|/)', n.name)]
    folded = [n for n in frozen.graph_def.node
              if n.name.endswith('/masked_weight')]
    assert len(folded) == mask_count
    assert all(n.op == 'Const' for n in folded)
    # In a session, as the checkpoint's graph ran. oneDNN (on by default)
    # picks other kernels for constant weights, hence the 1e-6; with
    # TF_ENABLE_ONEDNN_OPTS=0 the outputs are equal bit for bit.
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        tf.graph_util.import_graph_def(frozen.graph_def, name='')
        outputs = session.run(f'{tf1_graphs.OUTPUT}:0',
                              {f'{tf1_graphs.INPUT}:0': batch})
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-6)


def test_missing_output_node_lists_the_candidates():
    with pytest.raises(tf_prune.StripError) as error:
        export.freeze_checkpoint(str(FIXTURE), ['logits'])
    message = str(error.value)
    assert "'logits'" in message and 'probabilities' in message
    assert '\n' not in message


def test_tf1_checkpoint_needs_output_node_names():
    with pytest.raises(tf_prune.StripError, match='needs output_node_names'):
        export.freeze_checkpoint(str(FIXTURE), [])


def test_empty_directory_has_no_checkpoint(tmp_path):
    with pytest.raises(tf_prune.ModelFileError, match='no checkpoint in'):
        tf1_graph.graph_def_from_checkpoint(str(tmp_path), ['probabilities'])


def test_corrupt_checkpoint_is_one_line(tmp_path):
    for path in FIXTURE.iterdir():
        data = path.read_bytes()
        if path.name.endswith('.data-00000-of-00001'):
            data = data[:len(data) // 2]
        (tmp_path / path.name).write_bytes(data)
    with pytest.raises(tf_prune.ModelFileError, match='is unreadable') as error:
        tf1_graph.graph_def_from_checkpoint(str(tmp_path), ['probabilities'])
    assert '\n' not in str(error.value)
