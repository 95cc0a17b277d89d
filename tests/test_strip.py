"""Stripping: Keras models, and contrib's TF1 checkpoints (real and built)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tests.conftest import GOLDEN_DIR
from tests.helpers import tf1_graphs
from tf_prune import export
from tf_prune import strip

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
    unstripped = strip.graph_def_from_checkpoint(
        str(tmp_path), [tf1_graphs.OUTPUT])
    masks_frozen = {n.name.split('/part_')[0] for n in unstripped.node
                    if n.name.endswith('mask') or '/mask/part_' in n.name}
    assert len(masks_frozen) == mask_count > 0

    frozen = export.freeze_checkpoint(str(tmp_path), [tf1_graphs.OUTPUT])
    assert not _pruning_state_nodes(frozen.graph_def)
    assert not [n for n in frozen.graph_def.node
                if '/mask' in n.name.replace('/masked_weight', '')]
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
    with pytest.raises(strip.StripError) as error:
        export.freeze_checkpoint(str(FIXTURE), ['logits'])
    message = str(error.value)
    assert "'logits'" in message and 'probabilities' in message
    assert '\n' not in message


def test_tf1_checkpoint_needs_output_node_names():
    with pytest.raises(strip.StripError, match='needs --output_node_names'):
        export.freeze_checkpoint(str(FIXTURE), [])


def test_empty_directory_has_no_checkpoint(tmp_path):
    with pytest.raises(strip.StripError, match='no checkpoint in'):
        strip.graph_def_from_checkpoint(str(tmp_path), ['probabilities'])


def test_corrupt_checkpoint_is_one_line(tmp_path):
    for path in FIXTURE.iterdir():
        data = path.read_bytes()
        if path.name.endswith('.data-00000-of-00001'):
            data = data[:len(data) // 2]
        (tmp_path / path.name).write_bytes(data)
    with pytest.raises(strip.StripError, match='is unreadable') as error:
        strip.graph_def_from_checkpoint(str(tmp_path), ['probabilities'])
    assert '\n' not in str(error.value)


def _train_masks(model, sparsity=0.75):
    tf_prune.Pruning(f'target_sparsity={sparsity},begin_pruning_step=0,'
                     f'end_pruning_step=1,sparsity_function_end_step=1',
                     model).mask_update(tf.constant(1, tf.int64))


def _functional():
    inputs = keras.Input((12, 12, 1), name='image')
    x = keras.layers.Conv2D(4, 3, activation='relu', name='conv1')(inputs)
    x = keras.layers.BatchNormalization(name='norm')(x)
    x = keras.layers.Flatten(name='flatten')(x)
    outputs = keras.layers.Dense(5, name='logits')(x)
    return keras.Model(inputs, outputs), (3, 12, 12, 1)


def _sequential_lstm():
    return keras.Sequential([
        keras.Input((6, 4), name='rows'),
        keras.layers.LSTM(8, name='lstm'),
        keras.layers.Dense(3, name='logits')]), (3, 6, 4)


def _nested():
    inner = keras.Sequential([keras.Input((6,)),
                              keras.layers.Dense(7, name='inner_fc')],
                             name='block')
    inputs = keras.Input((6,), name='features')
    outputs = keras.layers.Dense(2, name='logits')(inner(inputs))
    return keras.Model(inputs, outputs), (3, 6)


class _Subclassed(keras.Model):

    def __init__(self):
        super().__init__()
        self.fc1 = keras.layers.Dense(7, activation='relu', name='fc1')
        self.fc2 = keras.layers.Dense(3, name='fc2')

    def call(self, inputs):
        return self.fc2(self.fc1(inputs))


def _subclassed():
    model = _Subclassed()
    model(np.zeros((1, 5), np.float32))
    return model, (3, 5)


def _short(path):
    return '/'.join(path.split('/')[-2:])


@pytest.mark.parametrize('build', [_functional, _sequential_lstm, _nested,
                                   _subclassed])
def test_strip_pruning_gives_a_plain_model_with_masked_weights(build):
    model, shape = build()
    classes = {l.name: type(l) for l in model._flatten_layers() if l is not model}
    pruned = tf_prune.prune(model)
    _train_masks(pruned)
    batch = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = pruned(batch).numpy()
    # Keyed '<layer>/<weight>': a copy's path may lack an outer model's name.
    masked = {_short(p.weight.path): (p.mask * p.weight).numpy()
              for w in tf_prune.pruning.find_wrappers(pruned)
              for p in w.pruned_weights}

    stripped = tf_prune.strip_pruning(pruned)

    layers = [l for l in stripped._flatten_layers() if l is not stripped]
    assert not [l for l in layers if isinstance(l, tf_prune.PruneWrapper)]
    assert {l.name: type(l) for l in layers} == classes
    assert not [v for v in stripped.weights
                if v.name in ('mask', 'threshold', 'last_mask_update_step')]
    np.testing.assert_allclose(stripped(batch).numpy(), expected,
                               rtol=0, atol=1e-6)
    values = {_short(v.path): v.numpy() for v in stripped.weights}
    for path, value in masked.items():
        np.testing.assert_array_equal(values[path], value)
        assert 0.7 < np.mean(value == 0) < 0.8


def test_strip_pruning_leaves_a_graph_model_pruned():
    model, shape = _functional()
    pruned = tf_prune.prune(model)
    _train_masks(pruned)
    tf_prune.strip_pruning(pruned)
    assert len(tf_prune.pruning.find_wrappers(pruned)) == 2
    kernel = pruned.get_layer('conv1').layer.kernel.numpy()
    assert np.mean(kernel == 0) < 0.1  # the weights themselves never change
