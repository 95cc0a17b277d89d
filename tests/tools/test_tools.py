"""The command-line tools, run as users run them."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tf_prune.keras.wrapper import find_wrappers
from tests.conftest import GOLDEN_DIR, ROOT, project_env
from tests.helpers.load_plain import run_tflite

TOOL = ROOT / 'tools' / 'pruning_schedule.py'
# TensorFlow prints start-up lines of its own at import; they are not ours.
TF_BANNER = ('WARNING: All log messages before absl::InitializeLog()', 'I0000 ')


def _run(*args):
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True,
                          text=True, timeout=120, env=project_env())


def test_prints_the_schedule():
    result = _run('--pruning_hparams=target_sparsity=0.8,'
                  'weight_sparsity_map=[conv1:0.4]', '--steps=0,50,100',
                  '--weights=conv1/kernel,fc/kernel')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split('\t') == ['step', 'sparsity', 'conv1/kernel', 'fc/kernel']
    assert lines[-1].split('\t') == ['100', '0.800000', '0.400000', '0.800000']


def test_bad_spec_is_one_line_and_exit_2():
    result = _run('--pruning_hparams=target_sparsty=0.8')
    assert result.returncode == 2
    ours = [line for line in result.stderr.strip().splitlines()
            if not line.startswith(TF_BANNER)]
    assert ours == [
        "pruning_schedule: --pruning_hparams=target_sparsty=0.8: Unknown "
        "hyperparameter 'target_sparsty'; did you mean 'target_sparsity'?"]


STRIP = ROOT / 'tools' / 'strip_pruning_vars.py'
INSPECT = ROOT / 'tools' / 'inspect_sparsity.py'
FIXTURE = GOLDEN_DIR / 'conv'


def _tool(tool, *args):
    return subprocess.run([sys.executable, str(tool), *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env=project_env())


def _our_stderr(result):
    return [line for line in result.stderr.strip().splitlines()
            if not line.startswith(TF_BANNER)]


def _run_graph_def(path, inputs, input_name, output_name):
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        tf.graph_util.import_graph_def(graph_def, name='')
        return graph_def, session.run(f'{output_name}:0',
                                      {f'{input_name}:0': inputs})


def _check_fixture_output(path):
    graph_def, outputs = _run_graph_def(
        path, np.load(FIXTURE / 'input.npy'), 'images', 'probabilities')
    np.testing.assert_allclose(outputs, np.load(FIXTURE / 'expected_output.npy'),
                               rtol=0, atol=1e-6)
    names = {n.name: n.op for n in graph_def.node}
    manifest = json.loads((FIXTURE / 'manifest.json').read_text())
    assert all(names[n] == 'Const' for n in manifest['contrib_masked_weight_consts'])
    assert not [n for n in names if n.endswith(('mask', 'threshold'))]
    assert not [op for op in names.values() if op in ('VariableV2', 'Assign')]


def test_strip_contrib_checkpoint_with_contribs_flags(tmp_path):
    result = _tool(STRIP, f'--checkpoint_dir={FIXTURE}',
                   '--output_node_names=probabilities', f'--output_dir={tmp_path}')
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == f'Wrote {tmp_path}/pruning_stripped.pb'
    _check_fixture_output(tmp_path / 'pruning_stripped.pb')


def test_bazel_built_tool_strips_contrib_checkpoint(tmp_path):
    bazel = shutil.which('bazel')
    assert bazel, 'bazel is missing: make test installs bazel-bootstrap'
    env = dict(project_env(), PATH=f'{os.path.dirname(sys.executable)}:'
               f'{os.environ["PATH"]}')
    build = subprocess.run([bazel, 'build', '-c', 'opt',
                            '//tools:strip_pruning_vars'], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    env.pop('PYTHONPATH')  # the binary finds tf_prune in its runfiles
    result = subprocess.run(
        [str(ROOT / 'bazel-bin' / 'tools' / 'strip_pruning_vars'),
         f'--checkpoint_dir={FIXTURE}', '--output_node_names=probabilities',
         f'--output_dir={tmp_path}', '--filename=bazel.pb'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    _check_fixture_output(tmp_path / 'bazel.pb')


@pytest.fixture(scope='module')
def keras_inputs(tmp_path_factory):
    """A pruned model trained with a training directory, saved three ways."""
    root = tmp_path_factory.mktemp('keras_inputs')
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 10)).astype(np.float32)
    y = rng.standard_normal((64, 3)).astype(np.float32)
    inputs = keras.Input((10,), name='features')
    hidden = keras.layers.Dense(32, activation='relu', name='fc1')(inputs)
    model = tf_prune.prune(keras.Model(
        inputs, keras.layers.Dense(3, name='logits')(hidden)))
    model.compile(optimizer='adam', loss='mse')
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[
        tf_prune.PruningCallback(
            'begin_pruning_step=0,pruning_frequency=1,target_sparsity=0.8,'
            'sparsity_function_end_step=4', checkpoint_dir=str(root / 'train'))])
    model.save(root / 'pruned.keras')
    model.export(str(root / 'pruned_saved_model'), verbose=False)
    return root, x, model(x).numpy()


def test_strip_training_directory_to_tflite(keras_inputs, tmp_path):
    root, x, expected = keras_inputs
    result = _tool(STRIP, f'--checkpoint_dir={root / "train"}',
                   '--output_format=tflite', f'--output_dir={tmp_path}')
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = run_tflite(tmp_path / 'pruning_stripped.tflite', x)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-5)

    inspected = _tool(INSPECT, '--json', tmp_path / 'pruning_stripped.tflite')
    assert inspected.returncode == 0, inspected.stderr[-3000:]
    report = json.loads(inspected.stdout)
    kernels = [t for t in report['tensors'] if t['shape'] == [32, 10]
               or t['shape'] == [3, 32]]
    assert len(kernels) == 2  # TFLite stores Dense kernels transposed
    assert all(t['sparsity'] == pytest.approx(0.8, abs=0.01) for t in kernels)
    assert report['total']['size'] == 32 * 10 + 32 + 3 * 32 + 3


def test_strip_keras_file_to_keras_and_saved_model_to_saved_model(
        keras_inputs, tmp_path):
    root, x, expected = keras_inputs
    result = _tool(STRIP, f'--model={root / "pruned.keras"}',
                   '--output_format=keras', f'--output_dir={tmp_path}')
    assert result.returncode == 0, result.stderr[-3000:]
    stripped = keras.models.load_model(tmp_path / 'pruning_stripped.keras')
    assert not find_wrappers(stripped)
    np.testing.assert_allclose(stripped(x).numpy(), expected, rtol=0, atol=1e-6)

    result = _tool(STRIP, f'--model={root / "pruned_saved_model"}',
                   '--output_format=saved_model', f'--output_dir={tmp_path}',
                   '--filename=served')
    assert result.returncode == 0, result.stderr[-3000:]
    serve = tf.saved_model.load(str(tmp_path / 'served')).signatures[
        'serving_default']
    (outputs,) = serve(features=tf.constant(x)).values()
    np.testing.assert_allclose(outputs.numpy(), expected, rtol=0, atol=1e-5)

    table = _tool(INSPECT, root / 'pruned.keras')
    assert table.returncode == 0, table.stderr[-3000:]
    lines = table.stdout.strip().splitlines()
    assert lines[0].split() == ['tensor', 'shape', 'non-zeros', 'sparsity']
    assert [line.split()[0] for line in lines[1:]] == [
        'fc1/kernel', 'fc1/bias', 'logits/kernel', 'logits/bias', 'total']
    assert lines[1].split()[-1] == '0.8000'


def _corrupt_copy(tmp_path):
    corrupt = tmp_path / 'corrupt'
    corrupt.mkdir()
    for path in FIXTURE.iterdir():
        data = path.read_bytes()
        if path.name.endswith('.index'):
            data = data[:100]
        (corrupt / path.name).write_bytes(data)
    return corrupt


def _bad_input_args(case, tmp_path):
    """Flags for one bad input, and the output directory they name."""
    output_dir = tmp_path / 'out'
    if case == 'no_checkpoint':
        args = [f'--checkpoint_dir={tmp_path}', '--output_node_names=probabilities']
    elif case == 'corrupt':
        args = [f'--checkpoint_dir={_corrupt_copy(tmp_path)}',
                '--output_node_names=probabilities']
    elif case == 'no_such_node':
        args = [f'--checkpoint_dir={FIXTURE}', '--output_node_names=logits']
    elif case == 'unwritable':
        (tmp_path / 'a_file').write_text('')
        output_dir = tmp_path / 'a_file' / 'out'  # unwritable even for root
        args = [f'--checkpoint_dir={FIXTURE}', '--output_node_names=probabilities']
    else:
        args = [f'--checkpoint_dir={FIXTURE}']
    return args + [f'--output_dir={output_dir}'], output_dir


@pytest.mark.parametrize('case,expected', [
    ('no_checkpoint', 'no checkpoint in'),
    ('corrupt', 'is unreadable'),
    ('no_such_node', "no node 'logits' in the graph; nodes no other node "
                     "reads: probabilities"),
    ('unwritable', 'cannot create --output_dir='),
    ('no_output_nodes', 'needs --output_node_names'),
])
def test_bad_input_is_one_line_exit_2_and_no_file(tmp_path, case, expected):
    args, output_dir = _bad_input_args(case, tmp_path)
    result = _tool(STRIP, *args)
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = _our_stderr(result)
    assert line.startswith('strip_pruning_vars: ') and expected in line
    assert not output_dir.is_dir() or not list(output_dir.iterdir())
