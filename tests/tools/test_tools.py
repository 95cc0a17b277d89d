"""The command-line tools, run as users run them.

A user's environment does not set TF_CPP_MIN_LOG_LEVEL: each run checks
that the tool prints its own lines and nothing of TensorFlow's, which only
--verbose lets through.
"""

import json
import os
import pathlib
import re
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

SCHEDULE = ROOT / 'tools' / 'pruning_schedule.py'
STRIP = ROOT / 'tools' / 'strip_pruning_vars.py'
INSPECT = ROOT / 'tools' / 'inspect_sparsity.py'
FIXTURE = GOLDEN_DIR / 'conv'
# TensorFlow's log lines as absl formats them, from its C++ and its Python.
CPP_LOG = re.compile(r'^[IWE]\d{4} [\d:.]+ +\d+ [\w.]+\.(cc|h):\d+\] ', re.M)
PYTHON_LOG = re.compile(r'^[IWE]\d{4} [\d:.]+ +\d+ [\w.]+\.py:\d+\] ', re.M)


def _user_env():
    """The tests' environment less the log level they set for themselves."""
    env = project_env()
    env.pop('TF_CPP_MIN_LOG_LEVEL', None)
    return env


def _tool(tool, *args):
    return subprocess.run([sys.executable, str(tool), *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env=_user_env())


def _ok(result):
    """The stdout of a run that succeeded and printed nothing on stderr."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ''
    return result.stdout


def _error_line(result):
    """The one line a run that failed on bad input printed, on stderr."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stdout == ''
    (line,) = result.stderr.splitlines()
    return line


def test_prints_the_schedule():
    stdout = _ok(_tool(SCHEDULE, '--pruning_hparams=target_sparsity=0.8,'
                       'weight_sparsity_map=[conv1:0.4]', '--steps=0,50,100',
                       '--weights=conv1/kernel,fc/kernel'))
    lines = stdout.splitlines()
    assert lines[0].split('\t') == ['step', 'sparsity', 'conv1/kernel', 'fc/kernel']
    assert lines[-1].split('\t') == ['100', '0.800000', '0.400000', '0.800000']
    assert len(lines) == 4


@pytest.mark.parametrize('flag,message', [
    ('--pruning_hparams=target_sparsty=0.8',
     "--pruning_hparams=target_sparsty=0.8: Unknown hyperparameter "
     "'target_sparsty'; did you mean 'target_sparsity'?"),
    ('--steps=a,b', "--steps=a,b: 'a' is not a step (give comma-separated "
                    "integers from 0 to 2147483647)"),
    ('--steps=0,-5', "--steps=0,-5: '-5' is not a step (give comma-separated "
                     "integers from 0 to 2147483647)"),
    # The schedule casts steps to int32, as contrib did.
    ('--steps=2147483648', "--steps=2147483648: '2147483648' is not a step "
                           "(give comma-separated integers from 0 to "
                           "2147483647)"),
    ('--weights=fc/kernel,', "--weights=fc/kernel,: '' is not a weight name "
                             "(give comma-separated layer/weight names)"),
    ('--weights=conv1/kernel,fc/kernel',
     '--weights=conv1/kernel,fc/kernel: Multiple matches in '
     'weight_sparsity_map for weight conv1/kernel (conv, conv1); make the '
     'patterns exclusive'),
])
def test_bad_schedule_flag_is_one_line_naming_it_and_exit_2(flag, message):
    spec = ('--pruning_hparams=weight_sparsity_map=[conv:0.5,conv1:0.4]'
            if flag.startswith('--weights') else '--pruning_hparams=')
    line = _error_line(_tool(SCHEDULE, spec, flag))
    assert line == f'pruning_schedule: {message}'


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
    stdout = _ok(_tool(STRIP, f'--checkpoint_dir={FIXTURE}',
                       '--output_node_names=probabilities',
                       f'--output_dir={tmp_path}'))
    assert stdout == f'Wrote {tmp_path}/pruning_stripped.pb\n'
    _check_fixture_output(tmp_path / 'pruning_stripped.pb')


def test_bazel_built_tool_strips_contrib_checkpoint(tmp_path):
    bazel = shutil.which('bazel')
    assert bazel, 'bazel is missing: make test installs bazel-bootstrap'
    env = dict(_user_env(), PATH=f'{os.path.dirname(sys.executable)}:'
               f'{os.environ["PATH"]}')
    build = subprocess.run([bazel, 'build', '//tools:strip_pruning_vars'],
                           cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    # .bazelrc sets opt for build, which test inherits: `bazel test` leaves
    # bazel-bin where `bazel build` put it.
    info = subprocess.run([bazel, 'info', 'bazel-bin'], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert info.stdout.strip().endswith('-opt/bin'), info.stderr[-3000:]
    env.pop('PYTHONPATH')  # the binary finds tf_prune in its runfiles
    result = subprocess.run(
        [str(ROOT / 'bazel-bin' / 'tools' / 'strip_pruning_vars'),
         f'--checkpoint_dir={FIXTURE}', '--output_node_names=probabilities',
         f'--output_dir={tmp_path}', '--filename=bazel.pb'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert _ok(result) == f'Wrote {tmp_path}/bazel.pb\n'
    _check_fixture_output(tmp_path / 'bazel.pb')


@pytest.fixture(scope='module')
def keras_inputs(tmp_path_factory):
    """A pruned model trained with a training directory, saved three ways,
    and its inputs as a .npy file."""
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
    np.save(root / 'inputs.npy', x)
    return root, x, model(x).numpy()


def test_strip_training_directory_to_tflite(keras_inputs, tmp_path):
    root, x, expected = keras_inputs
    stdout = _ok(_tool(STRIP, f'--checkpoint_dir={root / "train"}',
                       '--output_format=tflite', f'--output_dir={tmp_path}'))
    assert stdout == f'Wrote {tmp_path}/pruning_stripped.tflite\n'
    outputs = run_tflite(tmp_path / 'pruning_stripped.tflite', x)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-5)

    report = json.loads(_ok(_tool(INSPECT, '--json',
                                  tmp_path / 'pruning_stripped.tflite')))
    kernels = [t for t in report['tensors'] if t['shape'] == [32, 10]
               or t['shape'] == [3, 32]]
    assert len(kernels) == 2  # TFLite stores Dense kernels transposed
    assert all(t['sparsity'] == pytest.approx(0.8, abs=0.01) for t in kernels)
    assert report['total']['size'] == 32 * 10 + 32 + 3 * 32 + 3


def test_strip_keras_file_to_keras_and_saved_model_to_saved_model(
        keras_inputs, tmp_path):
    root, x, expected = keras_inputs
    stdout = _ok(_tool(STRIP, f'--model={root / "pruned.keras"}',
                       '--output_format=keras', f'--output_dir={tmp_path}'))
    assert stdout == f'Wrote {tmp_path}/pruning_stripped.keras\n'
    stripped = keras.models.load_model(tmp_path / 'pruning_stripped.keras')
    assert not find_wrappers(stripped)
    np.testing.assert_allclose(stripped(x).numpy(), expected, rtol=0, atol=1e-6)

    stdout = _ok(_tool(STRIP, f'--model={root / "pruned_saved_model"}',
                       '--output_format=saved_model',
                       f'--output_dir={tmp_path}', '--filename=served'))
    assert stdout == f'Wrote {tmp_path}/served\n'
    serve = tf.saved_model.load(str(tmp_path / 'served')).signatures[
        'serving_default']
    (outputs,) = serve(features=tf.constant(x)).values()
    np.testing.assert_allclose(outputs.numpy(), expected, rtol=0, atol=1e-5)

    lines = _ok(_tool(INSPECT, root / 'pruned.keras')).splitlines()
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
    line = _error_line(_tool(STRIP, *args))
    assert line.startswith('strip_pruning_vars: ') and expected in line
    assert not output_dir.is_dir() or not list(output_dir.iterdir())


def _quantize_args(root, quantize, tmp_path):
    args = [f'--checkpoint_dir={root / "train"}', '--output_format=tflite',
            f'--quantize={quantize}', f'--output_dir={tmp_path}']
    if quantize == 'int8':
        # Stored dense without --sparse_tflite: sparse int8 kernels are
        # refused (the next test).
        args.append(f'--representative_data={root / "inputs.npy"}')
    return args


# TF's MLIR quantizer writes this debug line to file descriptor 2 itself
# (llvm::dbgs()), past every log level, at each int8 conversion. Only a
# redirect of the process's stderr would hide it, which a library call
# must not do behind its caller's back.
QUANTIZER_DEBUG_LINE = re.compile(
    r'^fully_quantize: .*, output_inference_type: \w+\n', re.M)


@pytest.mark.parametrize('quantize', ['float16', 'int8'])
def test_strip_to_quantized_tflite(keras_inputs, tmp_path, quantize):
    root, x, expected = keras_inputs
    result = _tool(STRIP, *_quantize_args(root, quantize, tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == f'Wrote {tmp_path}/pruning_stripped.tflite\n'
    assert QUANTIZER_DEBUG_LINE.sub('', result.stderr) == ''
    error = np.abs(run_tflite(tmp_path / 'pruning_stripped.tflite', x)
                   - expected).max()
    assert error <= 0.02 * np.ptp(expected)


@pytest.mark.parametrize('quantize,sparse,expected', [
    ('int8', ['--sparse_tflite'],
     "--quantize='int8' with sparse=True writes sparse int8 kernels"),
    ('float16', [], '--representative_data calibrates --quantize=int8 only'),
])
def test_quantize_options_it_cannot_honour_are_one_line(
        keras_inputs, tmp_path, quantize, sparse, expected):
    root, _, _ = keras_inputs
    line = _error_line(_tool(
        STRIP, f'--checkpoint_dir={root / "train"}', '--output_format=tflite',
        f'--quantize={quantize}', f'--representative_data={root / "inputs.npy"}',
        *sparse, f'--output_dir={tmp_path / "out"}'))
    assert line.startswith(f'strip_pruning_vars: {expected}'), line
    assert not (tmp_path / 'out').exists()


def test_verbose_lets_tensorflows_logs_through(keras_inputs, tmp_path):
    root, _, _ = keras_inputs
    result = _tool(STRIP, f'--model={root / "pruned_saved_model"}',
                   '--output_format=tflite', f'--output_dir={tmp_path}',
                   '--verbose')
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == f'Wrote {tmp_path}/pruning_stripped.tflite\n'
    # The converter's notes, from TensorFlow's C++ and its Python.
    assert CPP_LOG.search(result.stderr), result.stderr[-3000:]
    assert PYTHON_LOG.search(result.stderr), result.stderr[-3000:]

    result = _tool(INSPECT, '--verbose', root / 'pruned_saved_model')
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith('tensor ')
    assert CPP_LOG.search(result.stderr), result.stderr[-3000:]

    result = _tool(SCHEDULE, '--verbose', '--steps=0')
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == 'step\tsparsity\n0\t0.000000\n'


def _representative_file(case, tmp_path):
    path = tmp_path / f'{case}.npy'
    if case == 'npz':  # an archive of arrays, named .npy
        with open(path, 'wb') as file:
            np.savez(file, np.zeros((4, 10), np.float32))
    elif case == 'strings':
        np.save(path, np.array(['a', 'b']))
    elif case == 'scalar':
        np.save(path, np.float32(1))
    elif case == 'no_examples':
        np.save(path, np.zeros((0, 10), np.float32))
    elif case == 'wrong_shape':
        np.save(path, np.zeros((4, 7), np.float32))
    return path


@pytest.mark.parametrize('case,expected', [
    ('missing', 'missing.npy is not a readable .npy file'),
    ('npz', 'npz.npy is not a readable .npy file'),
    ('strings', 'holds a <U1 array of shape (2,); give numbers, one input '
                'example per row'),
    ('scalar', 'holds a float32 array of shape (); give numbers'),
    ('no_examples', 'holds a float32 array of shape (0, 10); give numbers'),
    ('wrong_shape', 'holds examples of shape (7,); the model takes (10,)'),
])
def test_bad_representative_data_is_one_line_naming_the_flag(
        keras_inputs, tmp_path, case, expected):
    root, _, _ = keras_inputs
    path = _representative_file(case, tmp_path)
    line = _error_line(_tool(
        STRIP, f'--checkpoint_dir={root / "train"}', '--output_format=tflite',
        '--quantize=int8', f'--representative_data={path}',
        f'--output_dir={tmp_path / "out"}'))
    assert line.startswith('strip_pruning_vars: --representative_data')
    assert expected in line
    assert not (tmp_path / 'out').exists()


def test_tflite_files_are_run_by_litert():
    """tf.lite.Interpreter is deprecated: LiteRT runs every TFLite file the
    project runs; TensorFlow only converts."""
    sources = [path for folder in ('tf_prune', 'tools', 'examples', 'tests',
                                   'benchmarks')
               for path in (ROOT / folder).rglob('*.py')
               if path != pathlib.Path(__file__)]
    texts = {path: path.read_text() for path in sources}
    assert not [path for path, text in texts.items()
                if 'lite.Interpreter(' in text]
    runners = [text for text in texts.values() if 'Interpreter(' in text]
    assert len(runners) >= 2  # the tests' and the CNN example's
    assert all('from ai_edge_litert.interpreter import' in text
               for text in runners)


def test_half_precision_keras_file_strips_to_a_float32_tflite(tmp_path):
    # TFLite's builtin kernels compute in neither half type: the file
    # computes in float32 what the model computes in bfloat16.
    model = tf_prune.prune(keras.Sequential([
        keras.Input((10,), name='features'),
        keras.layers.Dense(8, activation='relu', dtype='bfloat16', name='fc1'),
        keras.layers.Dense(3, dtype='bfloat16', name='logits')]))
    model.save(tmp_path / 'half.keras')
    stdout = _ok(_tool(STRIP, f'--model={tmp_path / "half.keras"}',
                       '--output_format=tflite', f'--output_dir={tmp_path}'))
    assert stdout == f'Wrote {tmp_path}/pruning_stripped.tflite\n'
    x = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
    expected = np.asarray(model(x), np.float32)
    outputs = run_tflite(tmp_path / 'pruning_stripped.tflite', x)
    assert outputs.dtype == np.float32
    assert np.abs(outputs - expected).max() <= 0.02 * np.ptp(expected)


@pytest.fixture(scope='module')
def n_of_m_files(tmp_path_factory):
    """A Conv2D+Dense model as a 2:4-pruned TFLite file (sparse-encoded by
    the writer), a dense one, and the pruned one's .keras file."""
    root = tmp_path_factory.mktemp('n_of_m')
    keras.utils.set_random_seed(4)
    inputs = keras.Input((6, 6, 8))
    x = keras.layers.Conv2D(4, 3, name='conv')(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name='fc')(x))
    pruned = tf_prune.prune(model, 'nm_sparsity=2:4', one_shot=True)
    tf_prune.export.tflite(pruned, root / 'pruned.tflite')
    tf_prune.export.tflite(model, root / 'dense.tflite')
    pruned.save(root / 'pruned.keras')
    return root


def _m_by_n_column(stdout):
    """{shape: the N:M column} of inspect_sparsity's table, and the total's."""
    lines = [line.split() for line in stdout.splitlines()]
    assert lines[0][-1] == '2:4'
    return {line[1]: line[-1] for line in lines[1:-1]}, lines[-1][-1]


@pytest.mark.parametrize('name, expected', [
    ('pruned', 'yes'), ('dense', 'no')])
def test_m_by_n_checks_a_tflite_files_kernels(n_of_m_files, name, expected):
    column, total = _m_by_n_column(_ok(_tool(
        INSPECT, '--m_by_n=2:4', n_of_m_files / f'{name}.tflite')))
    # TFLite's layouts: Conv2D [out, h, w, in], FullyConnected [out, in].
    assert column['4x3x3x8'] == column['3x64'] == total == expected
    assert [value for shape, value in column.items()
            if 'x' not in shape] == ['-']  # the bias


def test_m_by_n_in_json_and_on_a_keras_file(n_of_m_files):
    report = json.loads(_ok(_tool(INSPECT, '--m_by_n=1:4', '--json',
                                  n_of_m_files / 'pruned.keras')))
    assert report['m_by_n'] == '1:4'
    checks = {tuple(t['shape']): t['m_by_n'] for t in report['tensors']}
    # Keras layouts: Conv2D [h, w, in, out], Dense [in, out]; 2 of 4 kept.
    assert checks == {(3, 3, 8, 4): False, (4,): None, (64, 3): False,
                      (3,): None}
    assert report['total']['m_by_n'] is False
    plain = json.loads(_ok(_tool(INSPECT, '--json',
                                 n_of_m_files / 'pruned.keras')))
    assert 'm_by_n' not in plain and 'm_by_n' not in plain['total']


@pytest.mark.parametrize('flags, message', [
    (['--m_by_n=4:2'], "--m_by_n must be N:M with integers 1 <= N < M (N "
     "weights kept of every M; 2:4 keeps 2 of 4), got '4:2'"),
    (['--m_by_n=x'], "--m_by_n must be N:M with integers 1 <= N < M (N "
     "weights kept of every M; 2:4 keeps 2 of 4), got 'x'"),
    (['--m_by_n='], "--m_by_n must be N:M with integers 1 <= N < M (N "
     "weights kept of every M; 2:4 keeps 2 of 4), got ''"),
    (['--m_by_n=2:4', '--pruned={root}/pruned.keras'],
     '--m_by_n checks the tensors of the sparsity report, which --pruned '
     'replaces; drop one of them'),
])
def test_bad_m_by_n_is_one_line_and_exit_2(n_of_m_files, flags, message):
    flags = [flag.format(root=n_of_m_files) for flag in flags]
    line = _error_line(_tool(INSPECT, *flags, n_of_m_files / 'pruned.tflite'))
    assert line == f'inspect_sparsity: {message}'
