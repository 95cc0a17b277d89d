"""Keras -> frozen GraphDef, TFLite, SavedModel, .keras -> the same outputs.

Each file is read back by a separate Python process that does not import
tf_prune (`tests/helpers/load_plain.py`), as a user's serving code would.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import time
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tests.conftest import ROOT, project_env
from tests.helpers.load_plain import run_tflite
from tf_prune import export

# Tolerances on the outputs, as a fraction of their range (max - min):
# float16 weights round to 11 bits; int8 weights and activations to 8 bits.
QUANTIZED_TOLERANCE = {'float16': 1e-3, 'dynamic': 0.02, 'int8': 0.02}


def _pruned_cnn(sparsity=0.9):
    inputs = keras.Input((16, 16, 1), name='image')
    x = keras.layers.Conv2D(16, 3, activation='relu', name='conv1')(inputs)
    x = keras.layers.MaxPooling2D(name='pool')(x)
    x = keras.layers.Flatten(name='flatten')(x)
    x = keras.layers.Dense(64, activation='relu', name='fc1')(x)
    outputs = keras.layers.Dense(10, name='logits')(x)
    model = tf_prune.prune(keras.Model(inputs, outputs))
    tf_prune.Pruning(f'target_sparsity={sparsity},begin_pruning_step=0,'
                     'end_pruning_step=1,sparsity_function_end_step=1',
                     model).mask_update(tf.constant(1, tf.int64))
    return model


@pytest.fixture(scope='module')
def cnn():
    model = _pruned_cnn()
    batch = np.random.default_rng(0).random((32, 16, 16, 1), np.float32)
    return model, batch, model(batch).numpy()


def _load_plain(paths, batch, tmp_path):
    """Outputs of each file for `batch`, computed without tf_prune."""
    np.save(tmp_path / 'batch.npy', batch)
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    result = subprocess.run(
        [sys.executable, '-m', 'tests.helpers.load_plain',
         str(tmp_path / 'batch.npy'), *map(str, paths)],
        cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return [np.load(f'{path}.out.npy') for path in paths]


def test_every_format_loads_without_tf_prune_and_computes_the_same(cnn, tmp_path):
    model, batch, expected = cnn
    paths = [tmp_path / 'model.pb', tmp_path / 'model.tflite',
             tmp_path / 'saved', tmp_path / 'model.keras']
    export.frozen_graph(model, paths[0])
    export.tflite(model, paths[1])
    export.saved_model(model, paths[2])
    export.keras_file(model, paths[3])
    for path, outputs in zip(paths, _load_plain(paths, batch, tmp_path)):
        np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-5,
                                   err_msg=str(path))


def test_frozen_graph_has_folded_weights_and_no_pruning_state(cnn, tmp_path):
    model, _, _ = cnn
    frozen = export.frozen_graph(model, tmp_path / 'model.pb')
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((tmp_path / 'model.pb').read_bytes())
    nodes = {node.name: node for node in graph_def.node}
    assert frozen.inputs == ('image',) and frozen.outputs == ('logits',)
    for name in ('conv1/kernel/masked_weight', 'fc1/kernel/masked_weight',
                 'logits/kernel/masked_weight'):
        assert nodes[name].op == 'Const'
        value = tf.make_ndarray(nodes[name].attr['value'].tensor)
        assert np.mean(value == 0) == pytest.approx(0.9, abs=0.01)
    assert nodes['conv1/bias'].op == 'Const'
    assert not [n for n in nodes if n.endswith(
        ('mask', 'threshold', 'last_mask_update_step'))]
    assert not [n for n in graph_def.node
                if n.op in ('VarHandleOp', 'ReadVariableOp', 'VariableV2')]


def test_output_node_names_choose_what_the_graph_computes(cnn, tmp_path):
    model, batch, _ = cnn
    frozen = export.freeze(model)
    hidden = [n.name for n in frozen.graph_def.node if n.name.endswith('Relu')]
    chosen = export.frozen_graph(model, tmp_path / 'hidden.pb', hidden[:1])
    assert chosen.outputs == tuple(hidden[:1])
    assert not [n for n in chosen.graph_def.node if n.name.startswith('logits')]
    with pytest.raises(tf_prune.StripError, match="no node 'nope'.*logits"):
        export.frozen_graph(model, tmp_path / 'bad.pb', ['nope'])
    assert not (tmp_path / 'bad.pb').exists()


def test_sparse_tflite_is_small_and_exact(cnn, tmp_path):
    model, batch, expected = cnn
    dense = export.tflite(model, tmp_path / 'dense.tflite', sparse=False)
    sparse = export.tflite(model, tmp_path / 'sparse.tflite')
    assert sparse <= 0.3 * dense  # 90% zeros
    assert sparse == (tmp_path / 'sparse.tflite').stat().st_size
    for name in ('dense.tflite', 'sparse.tflite'):
        np.testing.assert_allclose(run_tflite(tmp_path / name, batch),
                                   expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize('quantize,sparse', [
    ('float16', True), ('int8', False), ('dynamic', False)])
def test_quantized_tflite_within_stated_tolerance(cnn, tmp_path, quantize, sparse):
    model, batch, expected = cnn
    path = tmp_path / 'model.tflite'
    size = export.tflite(model, path, sparse=sparse, quantize=quantize,
                         representative_data=batch)
    float_size = export.tflite(model, tmp_path / 'float.tflite', sparse=sparse)
    assert size < float_size
    error = np.abs(run_tflite(path, batch) - expected).max()
    assert error <= QUANTIZED_TOLERANCE[quantize] * np.ptp(expected)


def test_a_pruned_model_is_stripped_before_conversion(cnn, tmp_path):
    model, _, _ = cnn
    export.tflite(model, tmp_path / 'pruned.tflite')
    export.tflite(tf_prune.strip_pruning(model), tmp_path / 'stripped.tflite')
    assert ((tmp_path / 'pruned.tflite').read_bytes()
            == (tmp_path / 'stripped.tflite').read_bytes())


class OneDenseNet(keras.Model):

    def __init__(self):
        super().__init__()
        self.fc = keras.layers.Dense(3, name='fc')

    def call(self, inputs):
        return self.fc(inputs)


def test_a_pruned_subclassed_model_is_refused_with_the_fix(tmp_path):
    model = OneDenseNet()
    model(np.zeros((1, 4), np.float32))
    tf_prune.prune(model)
    with pytest.raises(tf_prune.StripError, match=r'strip_pruning\(model\) first'):
        export.tflite(model, tmp_path / 'model.tflite')
    assert not list(tmp_path.iterdir())
    tf_prune.strip_pruning(model)
    export.tflite(model, tmp_path / 'model.tflite')


def test_tflite_refuses_what_it_cannot_write(cnn, tmp_path):
    model, batch, _ = cnn
    for quantize in ('dynamic', 'int8'):
        with pytest.raises(ValueError, match='XNNPACK delegate cannot run'):
            export.tflite(model, tmp_path / 'm.tflite', quantize=quantize,
                          representative_data=batch)
    with pytest.raises(ValueError, match='needs representative_data'):
        export.tflite(model, tmp_path / 'm.tflite', quantize='int8',
                      sparse=False)
    with pytest.raises(ValueError, match=r'shape \(16, 16, 2\); the model '
                                         r'takes \(16, 16, 1\)'):
        export.tflite(model, tmp_path / 'm.tflite', quantize='int8',
                      sparse=False,
                      representative_data=np.zeros((4, 16, 16, 2), np.float32))
    with pytest.raises(ValueError, match="quantize='int4'"):
        export.tflite(model, tmp_path / 'm.tflite', quantize='int4')
    assert not list(tmp_path.iterdir())


def test_lstm_exports_to_every_format(tmp_path):
    # Named, so its variables' names do not depend on the models made before.
    model = tf_prune.prune(keras.Sequential([
        keras.Input((6, 4), name='rows'), keras.layers.LSTM(8, name='lstm'),
        keras.layers.Dense(3, name='logits')], name='rows_model'))
    tf_prune.Pruning('target_sparsity=0.5,begin_pruning_step=0,'
                     'end_pruning_step=1,sparsity_function_end_step=1',
                     model).mask_update(tf.constant(1, tf.int64))
    batch = np.random.default_rng(1).standard_normal((1, 6, 4)).astype(np.float32)
    frozen = export.saved_model(model, tmp_path / 'saved')
    assert {'rows_model/lstm/lstm_cell/kernel/masked_weight',
            'rows_model/lstm/lstm_cell/recurrent_kernel/masked_weight'} <= {
                n.name for n in frozen.graph_def.node}
    export.tflite(model, tmp_path / 'model.tflite')  # batch size 1: a loop
    loaded = tf.saved_model.load(str(tmp_path / 'saved'))
    outputs = loaded.signatures['serving_default'](rows=tf.constant(batch))
    expected = model(batch).numpy()
    np.testing.assert_allclose(outputs['logits'], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(run_tflite(tmp_path / 'model.tflite', batch),
                               expected, rtol=0, atol=1e-5)


def test_pruned_saved_model_is_stripped_by_name(cnn, tmp_path):
    model, batch, expected = cnn
    model.export(str(tmp_path / 'pruned'), verbose=False)
    frozen = export.freeze_saved_model(str(tmp_path / 'pruned'))
    names = {node.name for node in frozen.graph_def.node}
    assert {'conv1/kernel/masked_weight', 'fc1/kernel/masked_weight',
            'logits/kernel/masked_weight'} <= names
    assert not [n for n in names if n.endswith('mask')]
    outputs = frozen.function()(tf.constant(batch))
    np.testing.assert_allclose(outputs[frozen.outputs[0]], expected,
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize('crash', ['while_writing', 'before_rename'])
@pytest.mark.parametrize('writer', ['frozen_graph', 'tflite', 'saved_model',
                                    'keras_file'])
def test_writer_killed_midway_leaves_no_output(tmp_path, writer, crash):
    extension = {'frozen_graph': '.pb', 'tflite': '.tflite',
                 'saved_model': '', 'keras_file': '.keras'}[writer]
    output = tmp_path / f'model{extension}'
    result = subprocess.run(
        [sys.executable, '-m', 'tests.helpers.killed_writer', writer,
         str(output), crash],
        env=project_env(), capture_output=True, text=True, timeout=300,
        check=False)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        'killed': crash}
    assert not output.exists()


def test_graph_and_keras_files_are_the_same_bytes_written_twice(cnn, tmp_path):
    model, _, _ = cnn
    for run in ('first', 'second'):
        export.frozen_graph(model, tmp_path / run / 'model.pb')
        export.keras_file(model, tmp_path / run / 'model.keras')
        # A second apart: a .keras file would record another save time.
        time.sleep(1.1 if run == 'first' else 0)
    for name in ('model.pb', 'model.keras'):
        assert ((tmp_path / 'first' / name).read_bytes()
                == (tmp_path / 'second' / name).read_bytes()), name
    with zipfile.ZipFile(tmp_path / 'first' / 'model.keras') as archive:
        assert {info.date_time for info in archive.infolist()} == {
            (1980, 1, 1, 0, 0, 0)}
    # A plain model written here and by another process: Keras numbers the
    # objects layers share (the dtype policy) by memory address.
    keras.utils.set_random_seed(0)
    plain = keras.Sequential(
        [keras.Input((8,), name='x'), keras.layers.Dense(3, name='fc')],
        name='plain')
    export.keras_file(plain, tmp_path / 'first' / 'plain.keras')
    code = ('import keras, sys\n'
            'from tf_prune import export\n'
            'keras.utils.set_random_seed(0)\n'
            'plain = keras.Sequential([keras.Input((8,), name="x"),\n'
            '    keras.layers.Dense(3, name="fc")], name="plain")\n'
            'export.keras_file(plain, sys.argv[1])\n')
    subprocess.run([sys.executable, '-c', code,
                    str(tmp_path / 'second' / 'plain.keras')],
                   env=project_env(), check=True, timeout=300)
    assert ((tmp_path / 'first' / 'plain.keras').read_bytes()
            == (tmp_path / 'second' / 'plain.keras').read_bytes())
    # Still a .keras file Keras reads, with the stripped model's weights.
    loaded = keras.models.load_model(tmp_path / 'first' / 'model.keras')
    for weight, expected in zip(loaded.get_weights(),
                                tf_prune.strip_pruning(model).get_weights()):
        np.testing.assert_array_equal(weight, expected)
    assert sorted(p.name for p in (tmp_path / 'first').iterdir()) == [
        'model.keras', 'model.pb', 'plain.keras']


@pytest.mark.parametrize('policy', ['float16', 'bfloat16', 'mixed_float16'])
def test_half_precision_model_exports_to_tflite_in_float32(tmp_path, policy):
    inputs = keras.Input((10,), name='features')
    hidden = keras.layers.Dense(32, activation='relu', name='fc1',
                                dtype=policy)(inputs)
    model = tf_prune.prune(keras.Model(
        inputs, keras.layers.Dense(3, name='logits', dtype=policy)(hidden)))
    tf_prune.Pruning('target_sparsity=0.5,begin_pruning_step=0,'
                     'end_pruning_step=1,sparsity_function_end_step=1',
                     model).mask_update(tf.constant(1, tf.int64))
    batch = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
    expected = np.asarray(model(batch), np.float32)
    export.tflite(model, tmp_path / 'model.tflite')
    outputs = run_tflite(tmp_path / 'model.tflite', batch)
    assert outputs.dtype == np.float32
    # The model rounds to its half type (8 bits of mantissa for bfloat16);
    # the file computes the same in float32.
    tolerance = 0.02 if 'bfloat16' in policy else 1e-3
    assert np.abs(outputs - expected).max() <= tolerance * np.ptp(expected)


def test_calibration_the_model_cannot_run_is_a_value_error(cnn, tmp_path):
    model, _, _ = cnn

    def wrong_examples():  # a generator: its shapes are not known up front
        for _ in range(2):
            yield [np.zeros((1, 8, 8, 1), np.float32)]

    with pytest.raises(ValueError, match='int8 conversion failed: .* '
                                         'representative_data') as error:
        export.tflite(model, tmp_path / 'model.tflite', sparse=False,
                      quantize='int8', representative_data=wrong_examples)
    assert '\n' not in str(error.value)
    assert not list(tmp_path.iterdir())


def test_saved_model_into_a_full_disk_is_an_os_error_naming_it(cnn, tmp_path):
    model, _, _ = cnn
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Writes past 2,000 bytes fail (EFBIG: Python ignores SIGXFSZ), as on
    # a full disk: saved_model.pb is larger.
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, hard))
    try:
        with pytest.raises(OSError) as error:
            export.saved_model(model, tmp_path / 'saved')
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert error.value.filename == str(tmp_path / 'saved')
    assert error.value.strerror == 'File too large'
    assert not list(tmp_path.iterdir())
