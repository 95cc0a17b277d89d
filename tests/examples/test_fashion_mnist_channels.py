"""examples/fashion_mnist_channels.py, run as a user runs it, on a slice of
the real Fashion-MNIST: channel pruning, shrink, the exports and the report."""

import re

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

import support
from tests.conftest import ROOT
from tests.examples.test_examples import _ok, _run, _table_row
from tests.helpers.tool_driver import refusal_line, run_rows

SCRIPT = 'examples/fashion_mnist_channels.py'
# 1,280 images: 10 steps per epoch; the masks reach 0.5 at step 6 of the
# pruning epoch and stay as they are for the last 4 steps, as the default's
# do after step 250.
SPEC = ('name=fmc,structure=channel,channel_criterion=l1,target_sparsity=0.5,'
        'pruning_frequency=2,sparsity_function_end_step=6,end_pruning_step=6')
# Narrow blocks: the test checks what the example does, not its accuracy.
ARGS = ('--epochs=2', '--prune_epochs=1', '--train_examples=1280',
        '--latency_rounds=3', '--widths=8,16,32')


def _number(cell):
    return float(cell.replace(',', ''))


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    train_dir = tmp_path_factory.mktemp('fashion_mnist_channels')
    stdout = _ok(_run(SCRIPT, f'--train_dir={train_dir}',
                      f'--pruning_hparams={SPEC}', *ARGS, timeout=300))
    return train_dir, stdout


def _channel_rows(stdout):
    table = stdout.split('\nChannels per layer:\n', 1)[1].split('\n\n', 1)[0]
    header, *rows = [line.split() for line in table.splitlines()]
    assert header == ['layer', 'dense', 'shrunk']
    return {name: (int(dense), int(shrunk)) for name, dense, shrunk in rows}


@pytest.mark.slow
def test_half_the_channels_go_and_the_exports_compute_the_shrunk_model(run):
    train_dir, stdout = run
    accuracy = {name: float(value) for name, value in re.findall(
        r'^  (dense|masked|shrunk|shrunk, TFLite)\s+(\S+)$', stdout,
        re.MULTILINE)}
    assert set(accuracy) == {'dense', 'masked', 'shrunk', 'shrunk, TFLite'}
    assert all(0 <= value <= 1 for value in accuracy.values()), accuracy
    # shrink removes exactly the masked channels, and the TFLite file is the
    # shrunk model: the same predictions (up to a near tie or two).
    assert accuracy['shrunk'] == pytest.approx(accuracy['masked'], abs=2e-4)
    assert accuracy['shrunk, TFLite'] == pytest.approx(accuracy['shrunk'],
                                                       abs=2e-4)
    difference = re.search(r'^Shrunk against masked outputs: max difference '
                           r'(\S+)$', stdout, re.MULTILINE).group(1)
    assert float(difference) < 1e-4
    masked = re.search(r'^Removable channels masked: (\S+)$', stdout,
                       re.MULTILINE).group(1)
    assert float(masked) == pytest.approx(0.5, abs=0.02)

    channels = _channel_rows(stdout)
    assert channels.pop('probabilities') == (10, 10)  # softmax: fixed
    assert len(channels) >= 4
    for name, (dense, shrunk) in channels.items():
        assert abs(shrunk - dense / 2) <= 1, (name, dense, shrunk)

    dense_row = _table_row(stdout, 'dense')
    shrunk_row = _table_row(stdout, 'shrunk')
    params = (_number(dense_row[1]), _number(shrunk_row[1]))
    flops = (_number(dense_row[2]), _number(shrunk_row[2]))
    assert params[1] < 0.4 * params[0]
    assert flops[1] < 0.4 * flops[0]
    assert _number(shrunk_row[4]) > 0 and _number(dense_row[4]) > 0
    ratios = _table_row(stdout, 'shrunk/dense')
    assert float(ratios[1]) == pytest.approx(params[1] / params[0], abs=1e-3)
    assert float(ratios[4]) > 0

    # The exports: the .keras files are plain Keras models of the printed
    # sizes and channels, and LiteRT runs the .tflite file to the shrunk
    # Keras model's outputs.
    export = train_dir / 'export'
    dense = keras.models.load_model(export / 'dense.keras')
    shrunk = keras.models.load_model(export / 'shrunk.keras')
    assert (dense.count_params(), shrunk.count_params()) == params
    for name, (dense_size, shrunk_size) in channels.items():
        assert dense.get_layer(name).filters == dense_size
        assert shrunk.get_layer(name).filters == shrunk_size
    (_, _), (images, _) = support.load_fashion_mnist()
    images = support.scale_images(images[:32])
    interpreter = Interpreter(
        model_path=str(export / 'shrunk.tflite'),
        experimental_op_resolver_type=(
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    index = interpreter.get_input_details()[0]['index']
    interpreter.resize_tensor_input(index, images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    tflite = interpreter.get_tensor(
        interpreter.get_output_details()[0]['index'])
    expected = shrunk.predict(images, verbose=0)
    np.testing.assert_allclose(tflite, expected, atol=1e-5)
    assert (export / 'dense.tflite').stat().st_size > (
        export / 'shrunk.tflite').stat().st_size
    assert f'tensorboard --logdir {train_dir}' in stdout


# The refusals: {row: (args, the line printed)}.
BAD_INPUTS = {
    'not_channel': (
        (f'--pruning_hparams={SPEC.replace("structure=channel,", "")}',),
        'fashion_mnist_channels: --pruning_hparams must say '
        'structure=channel'),
    # The stem and block1's second convolution add into one residual
    # stream: their channels go together, so they cannot differ in target.
    'group_targets': (
        ('--pruning_hparams=structure=channel,'
         'weight_sparsity_map=[stem_conv:0.3,block1_conv2:0.6]',),
        'fashion_mnist_channels: weight_sparsity_map gives the channel group '
        'of stem_conv different targets'),
    'prune_epochs': (
        ('--epochs=2', '--prune_epochs=3'),
        'fashion_mnist_channels: --prune_epochs must be in [1, --epochs=2]'),
    'widths': (
        ('--widths=32,0',),
        'fashion_mnist_channels: --widths must be one or more positive '
        'integers, got 32,0'),
    'no_data': (
        ('--data_dir=/nonexistent',),
        'fashion_mnist_channels: Fashion-MNIST not found'),
}


@pytest.fixture(scope='module')
def bad_input_results(tmp_path_factory):
    """Every row of BAD_INPUTS in one process (`run_rows`: flags parsed
    afresh and `main` called per row, as `app.run` does), each with its own
    --train_dir: `{row: (result, train_dir)}`."""
    train_dirs = {name: tmp_path_factory.mktemp(f'bad_{name}')
                  for name in BAD_INPUTS}
    results = run_rows(
        ROOT / SCRIPT,
        [(name, [f'--train_dir={train_dirs[name]}', *args])
         for name, (args, _) in BAD_INPUTS.items()],
        tmp_path_factory.mktemp('bad_inputs'))
    return {name: (results[name], train_dirs[name]) for name in BAD_INPUTS}


@pytest.mark.parametrize('name', list(BAD_INPUTS))
def test_bad_input_fails_in_one_line(bad_input_results, name):
    result, train_dir = bad_input_results[name]
    message = BAD_INPUTS[name][1]
    line = refusal_line(result)
    assert line.startswith(message), line
    assert not (train_dir / 'export').exists()
