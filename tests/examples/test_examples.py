"""The examples, run as the README runs them, on a slice of the real Fashion-MNIST.

As a user runs them, without TF_CPP_MIN_LOG_LEVEL: they print their own
lines only, and TensorFlow's logs with --verbose. The slice is a --data_dir
of the first images of each split (`fashion_mnist_slice`): the examples
train on a few batches and score on 2,000 test images, not 10,000.
"""

import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import ROOT, project_env
from tests.helpers.tensorboard_read import LogDir
from tests.helpers.fashion_mnist import fashion_mnist_slice
from tests.helpers.tool_driver import refusal_line, run_rows

CNN_SPEC = ('name=fm,target_sparsity=0.9,pruning_frequency=5,'
            'sparsity_function_end_step=25')
# 1,280 images in batches of 64: 20 steps per epoch, 40 in the 2 epochs.
CNN_ARGS = ('--epochs=2', '--batch_size=64', '--train_examples=1280')
# What the examples train on (no more than the tests' flags take) and are
# scored on.
TRAIN_EXAMPLES = 1280
TEST_EXAMPLES = 2000
# A TensorFlow log line as absl formats it (from its C++ or its Python).
TF_LOG = re.compile(r'^[IWE]\d{4} [\d:.]+ +\d+ [\w.]+\.(cc|h|py):\d+\] ', re.M)


def _run(script, *args, timeout=400):
    env = project_env()
    env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # the tests' own, not a user's
    return subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def _ok(result):
    """The stdout of a run that succeeded and printed nothing on stderr."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ''
    return result.stdout


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    """The examples' --data_dir: the first TRAIN_EXAMPLES and
    TEST_EXAMPLES."""
    return fashion_mnist_slice(tmp_path_factory.mktemp('fashion_mnist_slice'),
                               TRAIN_EXAMPLES, TEST_EXAMPLES)


def _table_row(stdout, name):
    """The cells of the report's row that starts with `name`."""
    match = re.search(rf'^{re.escape(name)}\s.*$', stdout, re.MULTILINE)
    assert match, f'no row {name} in:\n{stdout}'
    return match.group(0).split()


@pytest.fixture(scope='module')
def cnn_run(tmp_path_factory, data_dir):
    train_dir = tmp_path_factory.mktemp('fashion_mnist')
    stdout = _ok(_run('examples/fashion_mnist_cnn.py', f'--train_dir={train_dir}',
                      f'--pruning_hparams={CNN_SPEC}', *CNN_ARGS,
                      f'--data_dir={data_dir}'))
    return train_dir, stdout


def test_cnn_example_reports_accuracy_sparsity_and_sizes(cnn_run):
    train_dir, stdout = cnn_run
    accuracy = {name: float(value) for name, value in re.findall(
        r'^  (dense|pruned|pruned, sparse TFLite)\s+([\d.]+)%$', stdout,
        re.MULTILINE)}
    assert set(accuracy) == {'dense', 'pruned', 'pruned, sparse TFLite'}
    # 40 steps on 1,280 images still learn something (10% is chance).
    assert accuracy['dense'] > 50 and accuracy['pruned'] > 30
    # The TFLite file is the pruned model: the same predictions (0.05
    # points: one of the 2,000 test images).
    assert abs(accuracy['pruned, sparse TFLite'] - accuracy['pruned']) <= 0.05
    for weight in ('conv1/kernel', 'conv2/kernel', 'fc1/kernel',
                   'probabilities/kernel'):
        _, _, target, sparsity, _ = _table_row(stdout, weight)
        assert float(target) == 0.9
        assert float(sparsity) == pytest.approx(0.9, abs=0.002)
    sparse = _table_row(stdout, 'export/pruned_sparse.tflite')
    assert float(sparse[3].rstrip('x')) < 0.3
    for name in ('dense.pb', 'pruned.pb', 'dense.tflite',
                 'pruned_sparse.tflite'):
        assert (train_dir / 'export' / name).stat().st_size > 0
    assert f'tensorboard --logdir {train_dir}' in stdout


def test_cnn_example_logs_read_back_in_tensorboard(cnn_run):
    train_dir, _ = cnn_run
    log_dir = LogDir(train_dir)
    # Pruning summaries at the top, Keras' loss and accuracy beside them.
    assert {'.', 'train', 'validation'} <= set(log_dir.runs)
    charts = log_dir.layout()['category'][0]['chart']
    series = {tag: points for chart in charts
              for regex in chart['multiline']['tag']
              for tag, points in log_dir.chart_series('.', regex).items()}
    # 2 epochs of 20 steps; updates every 5 steps, the last at step 40.
    assert [step for step, _ in series['fm_summaries/sparsity']] == list(
        range(5, 41, 5))
    assert series['fm_summaries/sparsity'][-1][1] == pytest.approx(0.9)
    assert series['fm_summaries/model_sparsity'][-1][1] == pytest.approx(
        0.9, abs=0.002)
    for layer in ('conv1', 'conv2', 'fc1', 'probabilities'):
        assert f'fm_summaries/{layer}/mask/sparsity' in series
        assert series[f'fm_summaries/{layer}/threshold/threshold'][-1][1] > 0


def test_cnn_example_resumes_then_strips_with_the_tools(cnn_run, data_dir,
                                                       tmp_path):
    train_dir, first_stdout = cnn_run
    # A second run finds both models trained: no epoch runs again. With
    # --verbose, TensorFlow's logs (the converters') come on stderr. (Its
    # own process: the example sets TensorFlow's C++ log level from
    # sys.argv when it is imported.)
    result = _run('examples/fashion_mnist_cnn.py', f'--train_dir={train_dir}',
                  f'--pruning_hparams={CNN_SPEC}', *CNN_ARGS,
                  f'--data_dir={data_dir}', '--verbose')
    assert result.returncode == 0, result.stderr[-3000:]
    assert TF_LOG.search(result.stderr), result.stderr[-3000:]
    stdout = result.stdout
    assert 'holds 2 trained epochs' in stdout
    assert 'Epoch ' not in stdout
    assert _table_row(stdout, 'fc1/kernel') == _table_row(first_stdout,
                                                          'fc1/kernel')
    # What `make demo` runs next.
    _ok(_run('tools/strip_pruning_vars.py', f'--checkpoint_dir={train_dir}',
             '--output_format=tflite', f'--output_dir={tmp_path}'))
    table = _ok(_run('tools/inspect_sparsity.py',
                     tmp_path / 'pruning_stripped.tflite'))
    # TFLite stores the Dense kernel transposed.
    kernel_rows = [line.split() for line in table.splitlines()
                   if 'fc1' in line and '128x1600' in line]
    assert len(kernel_rows) == 1
    assert float(kernel_rows[0][-1]) == pytest.approx(0.9, abs=0.001)


@pytest.fixture(scope='module')
def cnn_refusals(cnn_run, data_dir, tmp_path_factory):
    """The example's refusals, all in one process (`run_rows`: flags parsed
    afresh and `main` called per row, as `app.run` does): `{row: (result,
    its --train_dir, that directory's files before)}`."""
    trained_dir, _ = cnn_run
    empty_dir = tmp_path_factory.mktemp('fashion_mnist_no_data')
    rows = {
        'other_hparams': (trained_dir, [
            f'--train_dir={trained_dir}',
            f'--pruning_hparams={CNN_SPEC.replace("0.9", "0.5")}', *CNN_ARGS,
            f'--data_dir={data_dir}']),
        'without_data': (empty_dir, [f'--train_dir={empty_dir}',
                                     f'--data_dir={empty_dir}/absent']),
    }
    before = {name: sorted(p.name for p in train_dir.rglob('*'))
              for name, (train_dir, _) in rows.items()}
    results = run_rows(ROOT / 'examples/fashion_mnist_cnn.py',
                       [(name, args) for name, (_, args) in rows.items()],
                       tmp_path_factory.mktemp('fashion_mnist_refusals'))
    return {name: (results[name], train_dir, before[name])
            for name, (train_dir, _) in rows.items()}


def test_cnn_example_refuses_other_hparams_for_a_trained_directory(
        cnn_refusals):
    result, train_dir, before = cnn_refusals['other_hparams']
    line = refusal_line(result)
    assert line.startswith(f'fashion_mnist_cnn: training directory {train_dir}')
    assert "'target_sparsity=0.9'" in line and "'target_sparsity=0.5'" in line
    assert 'another directory' in line
    assert sorted(p.name for p in train_dir.rglob('*')) == before


def test_cnn_example_without_data_fails_in_one_line(cnn_refusals):
    result, train_dir, _ = cnn_refusals['without_data']
    line = refusal_line(result)
    assert line.startswith('fashion_mnist_cnn: Fashion-MNIST not found')
    assert 'apt-get install dataset-fashion-mnist' in line
    assert not (train_dir / 'export').exists()


@pytest.mark.slow
def test_custom_training_loop_follows_contribs_spec_and_resumes(tmp_path,
                                                              data_dir):
    spec = ('name=cifar10_pruning,begin_pruning_step=10,target_sparsity=0.9,'
            'sparsity_function_begin_step=10,sparsity_function_end_step=20,'
            'pruning_frequency=5,weight_sparsity_map=[conv1:0.9,conv2/kernel:0.8]')
    args = [f'--train_dir={tmp_path}', f'--pruning_hparams={spec}',
            '--log_frequency=10', '--checkpoint_frequency=15',
            '--batch_size=32', f'--data_dir={data_dir}']
    stdout = _ok(_run('examples/custom_training_loop.py', *args,
                      '--max_steps=30'))
    assert 'Step 30: test accuracy' in stdout
    sparsity = dict(re.findall(r'^  (\S+)\s+sparsity ([\d.]+)', stdout,
                               re.MULTILINE))
    assert sparsity == {'conv1/kernel': '0.9000', 'conv2/kernel': '0.8000',
                        'local3/kernel': '0.9000', 'local4/kernel': '0.9000',
                        'softmax_linear/kernel': '0.9000'}
    # The progress line's target is what the weights' own targets add up
    # to (conv2 at 0.8), so a run that reached them shows no miss.
    reached, target = re.search(
        r'^step 30: loss [\d.]+, sparsity ([\d.]+) \(target ([\d.]+)\)$',
        stdout, re.MULTILINE).groups()
    assert abs(float(reached) - float(target)) <= 0.001
    assert float(target) < 0.9
    log_dir = LogDir(tmp_path)
    updates = log_dir.chart_series('.', '^cifar10_pruning_summaries/sparsity$')
    assert [s for s, _ in updates['cifar10_pruning_summaries/sparsity']] == [
        10, 15, 20, 25, 30]
    assert [s for s, _ in log_dir.chart_series('.', '^loss$')['loss']] == [
        10, 20, 30]

    stdout = _ok(_run('examples/custom_training_loop.py', *args,
                      '--max_steps=40'))
    assert 'Continuing from step 30.' in stdout
    assert 'Step 40: test accuracy' in stdout
    assert 'step 10:' not in stdout


def _trained_and_stripped_outputs(train_dir, stripped_pb, images):
    """The trained graph's and the stripped graph's `probabilities`."""
    v1 = tf.compat.v1
    prefix = v1.train.latest_checkpoint(str(train_dir))
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as sess:
        v1.train.import_meta_graph(prefix + '.meta').restore(sess, prefix)
        trained = sess.run('probabilities:0', {'images:0': images})
    graph_def = v1.GraphDef.FromString(stripped_pb.read_bytes())
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as sess:
        tf.import_graph_def(graph_def, name='')
        ops = {node.op for node in graph_def.node}
        stripped = sess.run('probabilities:0', {'images:0': images})
    return trained, stripped, ops


@pytest.mark.slow
def test_tf1_example_trains_prunes_resumes_and_strips(tmp_path, data_dir):
    spec = ('name=cifar10_pruning,begin_pruning_step=10,target_sparsity=0.9,'
            'sparsity_function_begin_step=10,sparsity_function_end_step=20,'
            'pruning_frequency=5,weight_sparsity_map=[conv1:0.9,conv2/weights:0.8]')
    train_dir = tmp_path / 'train'
    args = [f'--train_dir={train_dir}', f'--pruning_hparams={spec}',
            '--log_frequency=10', '--save_checkpoint_steps=15',
            '--batch_size=32', f'--data_dir={data_dir}']
    stdout = _ok(_run('examples/cifar10_style_v1.py', *args, '--max_steps=25'))
    assert 'Step 25: test accuracy' in stdout
    stdout = _ok(_run('examples/cifar10_style_v1.py', *args, '--max_steps=30'))
    assert 'Continuing from step 25.' in stdout
    assert 'step 10:' not in stdout and 'step 30: loss' in stdout
    sparsity = dict(re.findall(r'^  (\S+)\s+sparsity ([\d.]+)$', stdout,
                               re.MULTILINE))
    assert sparsity == {'conv1/mask': '0.9000', 'conv2/mask': '0.8000',
                        'local3/mask': '0.9000', 'local4/mask': '0.9000',
                        'softmax_linear/mask': '0.9000'}
    # contrib's summaries, every --log_frequency steps, after that step's
    # update: the schedule starts at 0 at step 10 and reaches 0.9 at 20.
    tag = 'cifar10_pruning_summaries/conv1/mask/sparsity'
    series = LogDir(train_dir).chart_series('.', f'^{tag}$')[tag]
    assert [value for _, value in series] == pytest.approx(
        [0.0, 0.0, 0.9, 0.9], abs=1e-6)

    strip = _run('tools/strip_pruning_vars.py', f'--checkpoint_dir={train_dir}',
                 '--output_node_names=probabilities',
                 f'--output_dir={tmp_path / "stripped"}')
    assert strip.returncode == 0, strip.stderr
    images = np.random.default_rng(0).uniform(size=(16, 28, 28, 1)).astype(
        np.float32)
    trained, stripped, ops = _trained_and_stripped_outputs(
        train_dir, tmp_path / 'stripped' / 'pruning_stripped.pb', images)
    np.testing.assert_allclose(stripped, trained, atol=1e-5)
    assert not ops & {'VariableV2', 'VarHandleOp', 'Assign', 'AssignVariableOp'}


def test_lstm_example_prunes_whole_1x4_blocks(tmp_path, data_dir):
    spec = ('name=lstm_pruning,target_sparsity=0.75,block_height=1,'
            'block_width=4,pruning_frequency=2,sparsity_function_end_step=8')
    stdout = _ok(_run('examples/lstm_rows.py', f'--train_dir={tmp_path}',
                      f'--pruning_hparams={spec}', '--epochs=1', '--units=16',
                      '--train_examples=1280', f'--data_dir={data_dir}'))
    for weight, shape in (('lstm/kernel', '28x64'),
                          ('lstm/recurrent_kernel', '16x64')):
        name, row_shape, sparsity, uniform = _table_row(stdout, weight)
        assert row_shape == shape
        assert float(sparsity) == pytest.approx(0.75, abs=0.01)
        assert float(uniform) == 1.0
    assert (tmp_path / 'export' / 'lstm_rows_sparse.tflite').stat().st_size > 0


def test_mask_engine_demo_prints_its_table_only():
    stdout = _ok(_run('examples/mask_engine_demo.py', '--steps=200'))
    # Its default spec updates the masks every 100 steps.
    assert re.findall(r'^ +(\d+) +target', stdout, re.M) == ['100', '200']
    assert 'One mask update of a 4096x4096 weight at 90%' in stdout
