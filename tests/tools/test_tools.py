"""The command-line tools, run as users run them.

Each tool runs all its rows in one process (`tests/helpers/tool_driver.py`),
which calls the tool's `main` per row as `app.run` does, its flags parsed
afresh, and captures the row's file descriptors 1 and 2. A user's
environment does not set TF_CPP_MIN_LOG_LEVEL, nor does the driver's: each
row checks that the tool prints its own lines and nothing of TensorFlow's,
which only --verbose lets through. --verbose acts as TensorFlow is
imported, so its test runs the tools as processes of their own; so does the
Bazel-built tool's, which is a binary of its own.
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
from tests.helpers.small_model import trained_pruned_mlp
from tests.helpers.tool_driver import refusal_line, run_rows

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


def _ok(result):
    """The stdout of a row that succeeded and printed nothing on stderr."""
    assert result['returncode'] == 0, result['stderr'][-3000:]
    assert result['stderr'] == ''
    return result['stdout']


# pruning_schedule's rows with a bad flag: (flag, message). Each row's name
# is its flag.
BAD_SCHEDULE_FLAGS = [
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
]


@pytest.fixture(scope='module')
def schedule_runs(tmp_path_factory):
    """`{row name: result}` of pruning_schedule: the schedule row, then the
    bad flags."""
    rows = [('schedule', ['--pruning_hparams=target_sparsity=0.8,'
                          'weight_sparsity_map=[conv1:0.4]',
                          '--steps=0,50,100',
                          '--weights=conv1/kernel,fc/kernel'])]
    for flag, _ in BAD_SCHEDULE_FLAGS:
        # Two patterns matching conv1 for the --weights rows to clash on.
        spec = ('--pruning_hparams=weight_sparsity_map=[conv:0.5,conv1:0.4]'
                if flag.startswith('--weights') else '--pruning_hparams=')
        rows.append((flag, [spec, flag]))
    return run_rows(SCHEDULE, rows, tmp_path_factory.mktemp('schedule'))


def test_prints_the_schedule(schedule_runs):
    lines = _ok(schedule_runs['schedule']).splitlines()
    assert lines[0].split('\t') == ['step', 'sparsity', 'conv1/kernel', 'fc/kernel']
    assert lines[-1].split('\t') == ['100', '0.800000', '0.400000', '0.800000']
    assert len(lines) == 4


@pytest.mark.parametrize('flag,message', BAD_SCHEDULE_FLAGS)
def test_bad_schedule_flag_is_one_line_naming_it_and_exit_2(
        schedule_runs, flag, message):
    line = refusal_line(schedule_runs[flag])
    assert line == f'pruning_schedule: {message}'


@pytest.fixture(scope='module')
def keras_inputs(tmp_path_factory):
    """A pruned model trained with a training directory, saved three ways,
    and its inputs as a .npy file."""
    root = tmp_path_factory.mktemp('keras_inputs')
    model, x = trained_pruned_mlp(
        root / 'train', 32, 'adam',
        'begin_pruning_step=0,pruning_frequency=1,target_sparsity=0.8,'
        'sparsity_function_end_step=4')
    model.save(root / 'pruned.keras')
    model.export(str(root / 'pruned_saved_model'), verbose=False)
    np.save(root / 'inputs.npy', x)
    return root, x, model(x).numpy()


@pytest.fixture(scope='module')
def half_precision_model():
    """A pruned model computing in bfloat16."""
    return tf_prune.prune(keras.Sequential([
        keras.Input((10,), name='features'),
        keras.layers.Dense(8, activation='relu', dtype='bfloat16', name='fc1'),
        keras.layers.Dense(3, dtype='bfloat16', name='logits')]))


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


INT8_FROM_TRAINING = ['--checkpoint_dir={keras}/train',
                      '--output_format=tflite', '--quantize=int8']
REPRESENTATIVE_CASES = ['missing', 'npz', 'strings', 'scalar', 'no_examples',
                        'wrong_shape']

# strip_pruning_vars's rows: (name, flags). Each row has a directory of its
# own, {dir}, holding the input `_make_strip_inputs` makes for it, and
# writes into {dir}/out (the fixture adds --output_dir). {keras} is
# keras_inputs' directory.
STRIP_ROWS = [
    # Written, then read by the tests.
    ('contrib_checkpoint', [f'--checkpoint_dir={FIXTURE}',
                            '--output_node_names=probabilities']),
    ('training_dir_to_tflite', ['--checkpoint_dir={keras}/train',
                                '--output_format=tflite']),
    ('keras_to_keras', ['--model={keras}/pruned.keras',
                        '--output_format=keras']),
    ('saved_model_to_saved_model', ['--model={keras}/pruned_saved_model',
                                    '--output_format=saved_model',
                                    '--filename=served']),
    ('quantize_float16', ['--checkpoint_dir={keras}/train',
                          '--output_format=tflite', '--quantize=float16']),
    # Stored dense without --sparse_tflite: sparse int8 kernels are refused
    # (the row int8_sparse).
    ('quantize_int8', [*INT8_FROM_TRAINING,
                       '--representative_data={keras}/inputs.npy']),
    ('half_precision_keras', ['--model={dir}/half.keras',
                              '--output_format=tflite']),
    # Bad input: one line, exit 2, nothing written.
    ('no_checkpoint', ['--checkpoint_dir={dir}',
                       '--output_node_names=probabilities']),
    ('corrupt', ['--checkpoint_dir={dir}/corrupt',
                 '--output_node_names=probabilities']),
    ('no_such_node', [f'--checkpoint_dir={FIXTURE}',
                      '--output_node_names=logits']),
    ('unwritable', [f'--checkpoint_dir={FIXTURE}',
                    '--output_node_names=probabilities']),
    ('no_output_nodes', [f'--checkpoint_dir={FIXTURE}']),
    ('int8_sparse', [*INT8_FROM_TRAINING,
                     '--representative_data={keras}/inputs.npy',
                     '--sparse_tflite']),
    ('float16_calibrated', ['--checkpoint_dir={keras}/train',
                            '--output_format=tflite', '--quantize=float16',
                            '--representative_data={keras}/inputs.npy']),
    *[(f'representative_{case}',
       [*INT8_FROM_TRAINING, f'--representative_data={{dir}}/{case}.npy'])
      for case in REPRESENTATIVE_CASES],
]


def _corrupt_copy(path):
    """The TF1 fixture at `path`, its .index file cut short."""
    path.mkdir()
    for source in FIXTURE.iterdir():
        data = source.read_bytes()
        if source.name.endswith('.index'):
            data = data[:100]
        (path / source.name).write_bytes(data)


def _representative_file(case, path):
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


def _make_strip_inputs(root, half_precision_model):
    """Makes each row's directory in `root`, with the input the row
    names."""
    for name, _ in STRIP_ROWS:
        if name != 'unwritable':
            (root / name).mkdir()
    # A file: no --output_dir can be made in it, even by the superuser.
    (root / 'unwritable').write_text('')
    _corrupt_copy(root / 'corrupt' / 'corrupt')
    half_precision_model.save(root / 'half_precision_keras' / 'half.keras')
    for case in REPRESENTATIVE_CASES:
        _representative_file(case, root / f'representative_{case}' /
                             f'{case}.npy')


@pytest.fixture(scope='module')
def strip_runs(tmp_path_factory, keras_inputs, half_precision_model):
    """`{row name: (result, the row's output directory)}` of
    strip_pruning_vars."""
    root = tmp_path_factory.mktemp('strip')
    _make_strip_inputs(root, half_precision_model)
    results = run_rows(STRIP, [
        (name, [arg.format(dir=root / name, keras=keras_inputs[0])
                for arg in args] + [f'--output_dir={root / name / "out"}'])
        for name, args in STRIP_ROWS], root)
    return {name: (results[name], root / name / 'out')
            for name, _ in STRIP_ROWS}


def _written(strip_runs, name, filename):
    """The path row `name` wrote, and said so on stdout, only."""
    result, output_dir = strip_runs[name]
    path = output_dir / filename
    assert _ok(result) == f'Wrote {path}\n'
    return path


def _strip_refusal_line(strip_runs, name):
    """The one line row `name` printed; it wrote nothing."""
    result, output_dir = strip_runs[name]
    line = refusal_line(result)
    assert not output_dir.exists()
    return line


M_BY_N_USAGE = ("--m_by_n must be N:M with integers 1 <= N < M (N weights "
                "kept of every M; 2:4 keeps 2 of 4), got ")
# inspect_sparsity's rows with a bad --m_by_n, on {n_of_m}/pruned.tflite:
# (name, flags, message).
BAD_M_BY_N = [
    ('m_by_n_reversed', ['--m_by_n=4:2'], M_BY_N_USAGE + "'4:2'"),
    ('m_by_n_not_numbers', ['--m_by_n=x'], M_BY_N_USAGE + "'x'"),
    ('m_by_n_empty', ['--m_by_n='], M_BY_N_USAGE + "''"),
    ('m_by_n_with_pruned', ['--m_by_n=2:4', '--pruned={n_of_m}/pruned.keras'],
     '--m_by_n checks the tensors of the sparsity report, which --pruned '
     'replaces; drop one of them'),
]
# inspect_sparsity's rows: (name, flags). {stripped_tflite} is the TFLite
# file the strip row training_dir_to_tflite wrote, {keras} keras_inputs'
# directory, {n_of_m} n_of_m_files'.
INSPECT_ROWS = [
    ('stripped_tflite_json', ['--json', '{stripped_tflite}']),
    ('pruned_keras', ['{keras}/pruned.keras']),
    ('m_by_n_pruned_tflite', ['--m_by_n=2:4', '{n_of_m}/pruned.tflite']),
    ('m_by_n_dense_tflite', ['--m_by_n=2:4', '{n_of_m}/dense.tflite']),
    ('m_by_n_json_keras', ['--m_by_n=1:4', '--json',
                           '{n_of_m}/pruned.keras']),
    ('json_keras', ['--json', '{n_of_m}/pruned.keras']),
    *[(name, [*flags, '{n_of_m}/pruned.tflite'])
      for name, flags, _ in BAD_M_BY_N],
]


@pytest.fixture(scope='module')
def inspect_runs(tmp_path_factory, strip_runs, keras_inputs, n_of_m_files):
    """`{row name: result}` of inspect_sparsity, all its rows in one
    process: after strip_pruning_vars, which writes a file it reads."""
    paths = {'stripped_tflite': strip_runs['training_dir_to_tflite'][1]
             / 'pruning_stripped.tflite',
             'keras': keras_inputs[0], 'n_of_m': n_of_m_files}
    return run_rows(INSPECT, [
        (name, [arg.format(**paths) for arg in args])
        for name, args in INSPECT_ROWS], tmp_path_factory.mktemp('inspect'))


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


def test_strip_contrib_checkpoint_with_contribs_flags(strip_runs):
    _check_fixture_output(_written(strip_runs, 'contrib_checkpoint',
                                   'pruning_stripped.pb'))


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
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ''
    assert result.stdout == f'Wrote {tmp_path}/bazel.pb\n'
    _check_fixture_output(tmp_path / 'bazel.pb')


def test_strip_training_directory_to_tflite(
        keras_inputs, strip_runs, inspect_runs):
    _, x, expected = keras_inputs
    path = _written(strip_runs, 'training_dir_to_tflite',
                    'pruning_stripped.tflite')
    np.testing.assert_allclose(run_tflite(path, x), expected, rtol=0,
                               atol=1e-5)

    report = json.loads(_ok(inspect_runs['stripped_tflite_json']))
    kernels = [t for t in report['tensors'] if t['shape'] == [32, 10]
               or t['shape'] == [3, 32]]
    assert len(kernels) == 2  # TFLite stores Dense kernels transposed
    assert all(t['sparsity'] == pytest.approx(0.8, abs=0.01) for t in kernels)
    assert report['total']['size'] == 32 * 10 + 32 + 3 * 32 + 3


def test_strip_keras_file_to_keras_and_saved_model_to_saved_model(
        keras_inputs, strip_runs, inspect_runs):
    _, x, expected = keras_inputs
    stripped = keras.models.load_model(_written(
        strip_runs, 'keras_to_keras', 'pruning_stripped.keras'))
    assert not find_wrappers(stripped)
    np.testing.assert_allclose(stripped(x).numpy(), expected, rtol=0, atol=1e-6)

    serve = tf.saved_model.load(str(_written(
        strip_runs, 'saved_model_to_saved_model', 'served'))).signatures[
        'serving_default']
    (outputs,) = serve(features=tf.constant(x)).values()
    np.testing.assert_allclose(outputs.numpy(), expected, rtol=0, atol=1e-5)

    lines = _ok(inspect_runs['pruned_keras']).splitlines()
    assert lines[0].split() == ['tensor', 'shape', 'non-zeros', 'sparsity']
    assert [line.split()[0] for line in lines[1:]] == [
        'fc1/kernel', 'fc1/bias', 'logits/kernel', 'logits/bias', 'total']
    assert lines[1].split()[-1] == '0.8000'


@pytest.mark.parametrize('name,expected', [
    ('no_checkpoint', 'no checkpoint in'),
    ('corrupt', 'is unreadable'),
    ('no_such_node', "no node 'logits' in the graph; nodes no other node "
                     "reads: probabilities"),
    ('unwritable', 'cannot create --output_dir='),
    ('no_output_nodes', 'needs --output_node_names'),
])
def test_bad_input_is_one_line_exit_2_and_no_file(strip_runs, name, expected):
    line = _strip_refusal_line(strip_runs, name)
    assert line.startswith('strip_pruning_vars: ') and expected in line


# TF's MLIR quantizer writes this debug line to file descriptor 2 itself
# (llvm::dbgs()), past every log level, at each int8 conversion. Only a
# redirect of the process's stderr would hide it, which a library call
# must not do behind its caller's back.
QUANTIZER_DEBUG_LINE = re.compile(
    r'^fully_quantize: .*, output_inference_type: \w+\n', re.M)


@pytest.mark.parametrize('quantize', ['float16', 'int8'])
def test_strip_to_quantized_tflite(keras_inputs, strip_runs, quantize):
    _, x, expected = keras_inputs
    result, output_dir = strip_runs[f'quantize_{quantize}']
    assert result['returncode'] == 0, result['stderr'][-3000:]
    path = output_dir / 'pruning_stripped.tflite'
    assert result['stdout'] == f'Wrote {path}\n'
    assert QUANTIZER_DEBUG_LINE.sub('', result['stderr']) == ''
    error = np.abs(run_tflite(path, x) - expected).max()
    assert error <= 0.02 * np.ptp(expected)


@pytest.mark.parametrize('name,expected', [
    ('int8_sparse',
     "--quantize='int8' with sparse=True writes sparse int8 kernels"),
    ('float16_calibrated',
     '--representative_data calibrates --quantize=int8 only'),
])
def test_quantize_options_it_cannot_honour_are_one_line(
        strip_runs, name, expected):
    line = _strip_refusal_line(strip_runs, name)
    assert line.startswith(f'strip_pruning_vars: {expected}'), line


def _tool(tool, *args):
    """`tool` run as a process of its own."""
    return subprocess.run([sys.executable, str(tool), *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          env=_user_env())


def test_verbose_lets_tensorflows_logs_through(keras_inputs, tmp_path):
    # Each tool in a process of its own: a tool finds --verbose in sys.argv
    # as it imports TensorFlow, which reads its C++ log level only then (the
    # driver imports the tools without it).
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
        strip_runs, case, expected):
    line = _strip_refusal_line(strip_runs, f'representative_{case}')
    assert line.startswith('strip_pruning_vars: --representative_data')
    assert expected in line


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


def test_half_precision_keras_file_strips_to_a_float32_tflite(
        strip_runs, half_precision_model):
    # TFLite's builtin kernels compute in neither half type: the file
    # computes in float32 what the model computes in bfloat16.
    path = _written(strip_runs, 'half_precision_keras',
                    'pruning_stripped.tflite')
    x = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
    expected = np.asarray(half_precision_model(x), np.float32)
    outputs = run_tflite(path, x)
    assert outputs.dtype == np.float32
    assert np.abs(outputs - expected).max() <= 0.02 * np.ptp(expected)


def _m_by_n_column(stdout):
    """{shape: the N:M column} of inspect_sparsity's table, and the total's."""
    lines = [line.split() for line in stdout.splitlines()]
    assert lines[0][-1] == '2:4'
    return {line[1]: line[-1] for line in lines[1:-1]}, lines[-1][-1]


@pytest.mark.parametrize('name, expected', [
    ('pruned', 'yes'), ('dense', 'no')])
def test_m_by_n_checks_a_tflite_files_kernels(inspect_runs, name, expected):
    column, total = _m_by_n_column(_ok(
        inspect_runs[f'm_by_n_{name}_tflite']))
    # TFLite's layouts: Conv2D [out, h, w, in], FullyConnected [out, in].
    assert column['4x3x3x8'] == column['3x64'] == total == expected
    assert [value for shape, value in column.items()
            if 'x' not in shape] == ['-']  # the bias


def test_m_by_n_in_json_and_on_a_keras_file(inspect_runs):
    report = json.loads(_ok(inspect_runs['m_by_n_json_keras']))
    assert report['m_by_n'] == '1:4'
    checks = {tuple(t['shape']): t['m_by_n'] for t in report['tensors']}
    # Keras layouts: Conv2D [h, w, in, out], Dense [in, out]; 2 of 4 kept.
    assert checks == {(3, 3, 8, 4): False, (4,): None, (64, 3): False,
                      (3,): None}
    assert report['total']['m_by_n'] is False
    plain = json.loads(_ok(inspect_runs['json_keras']))
    assert 'm_by_n' not in plain and 'm_by_n' not in plain['total']


@pytest.mark.parametrize('name, message',
                         [(name, message) for name, _, message in BAD_M_BY_N])
def test_bad_m_by_n_is_one_line_and_exit_2(inspect_runs, name, message):
    line = refusal_line(inspect_runs[name])
    assert line == f'inspect_sparsity: {message}'
