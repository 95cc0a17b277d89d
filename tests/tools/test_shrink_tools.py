"""The tools on channel-pruned models: `strip_pruning_vars --shrink` writes
the shrunk model in every format, and `inspect_sparsity --pruned` reports
its channels, parameters and FLOPs against the pruned model's.

Each tool runs all its rows in one process (`tests/helpers/tool_driver.py`),
which runs the tool's `main` per row, as a user runs it, capturing its
file descriptors 1 and 2: a row prints its lines and nothing of
TensorFlow's.
"""

import json

import keras
import numpy as np
import pytest

import tf_prune
from tests.conftest import GOLDEN_DIR, ROOT
from tests.helpers.load_plain import run_tflite
from tests.helpers.tool_driver import refusal_line, run_rows
from tf_prune import structured

TOOLS = {'strip': ROOT / 'tools' / 'strip_pruning_vars.py',
         'inspect': ROOT / 'tools' / 'inspect_sparsity.py'}
SPEC = ('structure=channel,begin_pruning_step=0,pruning_frequency=1,'
        'target_sparsity=0.5,sparsity_function_end_step=2')
L = keras.layers
SHRINK_FIX = ('strip_pruning_vars: --shrink removes the channels of a Keras '
              'model pruned with structure=channel, and ')


def _cnn():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3), name='image')
    x = L.Conv2D(8, 3, padding='same', use_bias=False, name='stem')(inputs)
    x = L.BatchNormalization(name='stem_bn')(x)
    x = L.ReLU(name='stem_relu')(x)
    y = L.Conv2D(8, 3, padding='same', activation='relu', name='expand')(x)
    y = L.DepthwiseConv2D(3, padding='same', name='depthwise')(y)
    y = L.Conv2D(8, 1, name='project')(y)
    x = L.Add(name='residual')([x, y])
    x = L.GlobalAveragePooling2D(name='pool')(x)
    x = L.Dense(8, activation='relu', name='fc')(x)
    return keras.Model(inputs, L.Dense(3, name='logits')(x), name='cnn')


# Rows of each tool's run: (name, flags); {root} is the inputs' directory,
# {out} the row's own output directory. The inspect rows read what the
# strip rows wrote.
STRIP_ROWS = [
    ('train_to_tflite', ['--checkpoint_dir={root}/train', '--shrink',
                         '--output_format=tflite']),
    ('keras_to_graphdef', ['--model={root}/channels.keras', '--shrink']),
    ('keras_to_saved_model', ['--model={root}/channels.keras', '--shrink',
                              '--output_format=saved_model']),
    ('train_to_keras', ['--checkpoint_dir={root}/train', '--shrink',
                        '--output_format=keras']),
    ('weight_pruned', ['--model={root}/weights.keras', '--shrink']),
    ('no_masks', ['--model={root}/plain.keras', '--shrink']),
    ('tf1_checkpoint', [f'--checkpoint_dir={GOLDEN_DIR / "conv"}',
                        '--output_node_names=probabilities', '--shrink']),
]
SHRUNK = {'keras': '{root}/out_strip_train_to_keras/pruning_stripped.keras',
          'graphdef': '{root}/out_strip_keras_to_graphdef/pruning_stripped.pb',
          'saved_model':
              '{root}/out_strip_keras_to_saved_model/pruning_stripped',
          'tflite': '{root}/out_strip_train_to_tflite/pruning_stripped.tflite'}
INSPECT_ROWS = [
    ('table', ['--pruned={root}/train', SHRUNK['keras']]),
    ('json_graphdef', ['--json', '--pruned={root}/train', SHRUNK['graphdef']]),
    ('json_saved_model', ['--json', '--pruned={root}/channels.keras',
                          SHRUNK['saved_model']]),
    ('weight_pruned', ['--pruned={root}/weights.keras', SHRUNK['keras']]),
    ('tflite', ['--pruned={root}/train', SHRUNK['tflite']]),
    ('not_shrunk', ['--pruned={root}/train', '{root}/plain.keras']),
]


def _run_rows(tool, rows, root):
    """`{row name: result}` of one driver process running `rows`."""
    return run_rows(TOOLS[tool], [
        (name, [arg.format(root=root, out=root / f'out_{tool}_{name}')
                for arg in args]
         + ([f'--output_dir={root / f"out_{tool}_{name}"}']
            if tool == 'strip' else [])) for name, args in rows], root)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """A CNN pruned with structure=channel, trained in a training directory
    and saved as a .keras file; the same CNN weight-pruned and unpruned as
    .keras files; and every row of both tools run on them."""
    root = tmp_path_factory.mktemp('shrink_tools')
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8, 8, 3)).astype(np.float32)
    y = rng.standard_normal((32, 3)).astype(np.float32)
    pruned = tf_prune.prune(_cnn(), SPEC)
    pruned.compile(optimizer='adam', loss='mse')
    # Two steps: the masks reach the target at the second.
    pruned.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[
        tf_prune.PruningCallback(SPEC, checkpoint_dir=str(root / 'train'))])
    pruned.save(root / 'channels.keras')
    tf_prune.prune(_cnn()).save(root / 'weights.keras')
    _cnn().save(root / 'plain.keras')
    results = {('strip', name): row for name, row in
               _run_rows('strip', STRIP_ROWS, root).items()}
    results.update({('inspect', name): row for name, row in
                    _run_rows('inspect', INSPECT_ROWS, root).items()})
    return {'root': root, 'pruned': pruned, 'x': x, 'results': results}


def _ok(runs, tool, name):
    """The stdout of a row that succeeded and printed nothing on stderr."""
    result = runs['results'][tool, name]
    assert result['returncode'] == 0, result['stderr'][-3000:]
    assert result['stderr'] == ''
    return result['stdout']


def _error_line(runs, tool, name):
    """The one line a row refused on bad input printed, on stderr; nothing
    written."""
    root, result = runs['root'], runs['results'][tool, name]
    assert not (root / f'out_{tool}_{name}').exists()
    return refusal_line(result)


def _path(runs, output_format):
    return SHRUNK[output_format].format(root=runs['root'])


def test_channel_pruned_model_shrinks_to_every_format(runs):
    pruned, x = runs['pruned'], runs['x']
    shrunk = tf_prune.shrink(pruned)
    assert structured.masked_channels(pruned)  # channels to remove
    expected = keras.ops.convert_to_numpy(shrunk(x, training=False))
    masked = keras.ops.convert_to_numpy(pruned(x, training=False))
    np.testing.assert_allclose(expected, masked, rtol=0,
                               atol=1e-5 * np.ptp(masked))
    for name, output_format in [('train_to_tflite', 'tflite'),
                                ('keras_to_graphdef', 'graphdef'),
                                ('keras_to_saved_model', 'saved_model'),
                                ('train_to_keras', 'keras')]:
        path = _path(runs, output_format)
        assert _ok(runs, 'strip', name) == f'Wrote {path}\n'

    # The directory's latest checkpoint holds the model as training left it.
    outputs = run_tflite(_path(runs, 'tflite'), x)
    np.testing.assert_allclose(outputs, expected, rtol=0,
                               atol=1e-5 * np.ptp(expected))
    # Fewer weights than the shrunk model has parameters (TFLite folds
    # BatchNormalization into the convolution before it): shrunk, not zeroed.
    report = tf_prune.sparsity_report.report(_path(runs, 'tflite'))
    assert tf_prune.sparsity_report.total(report).size <= shrunk.count_params()

    written = keras.models.load_model(_path(runs, 'keras'))
    assert [(layer.name, type(layer)) for layer in written.layers] == [
        (layer.name, type(layer)) for layer in shrunk.layers]
    assert [w.shape for w in written.weights] == [
        w.shape for w in shrunk.weights]
    np.testing.assert_allclose(written(x).numpy(), expected, rtol=0,
                               atol=1e-5 * np.ptp(expected))
    # The .pb and the SavedModel: inspect_sparsity --pruned checks that they
    # hold the shrunk model's weights (test_inspect_reports_...).


@pytest.mark.parametrize('name,expected', [
    ('weight_pruned', '{root}/weights.keras is pruned with structure=weight '
                      '(stem, expand, depthwise and 3 more mask single '
                      'weights, not channels); leave out --shrink to write '
                      'it stripped'),
    ('no_masks', '{root}/plain.keras has no channel masks (no layer of it is '
                 'pruned); prune it with structure=channel first'),
    ('tf1_checkpoint', f'{GOLDEN_DIR / "conv"} is a TF1 checkpoint directory, '
                       f'a graph without Keras layers; leave out --shrink to '
                       f'write it stripped'),
])
def test_shrink_without_channel_masks_is_one_line_saying_why(
        runs, name, expected):
    line = _error_line(runs, 'strip', name)
    assert line == SHRINK_FIX + expected.format(root=runs['root'])


def _expected_report(pruned):
    """The report's numbers, from the library: each layer with weights, its
    output channels (a group's producer loses the channels its mask
    removes), parameters and FLOPs, before and after."""
    shrunk = tf_prune.shrink(pruned)
    found = structured.find_channel_groups(pruned)
    removed = structured.masked_channels(pruned, found)
    lost = {found.groups[g].name: len(channels)
            for g, channels in removed.items()}
    layers = []
    for layer in shrunk.layers:
        if not layer.weights:
            continue
        original = found.layers[layer.name]
        channels = original.output.shape[-1]
        if layer.name in lost:
            assert layer.output.shape[-1] == channels - lost[layer.name]
        single = keras.Model(layer.input, layer.output)
        layers.append({
            'layer': layer.name, 'class': type(original).__name__,
            'channels': {'before': channels,
                         'after': layer.output.shape[-1]},
            'parameters': {'before': original.count_params(),
                           'after': layer.count_params()},
            'flops': {'before': structured.cost.flops(keras.Model(
                original.input, original.output)),
                'after': structured.cost.flops(single)}})
    dense = _cnn()
    parameters = (dense.count_params(), shrunk.count_params())
    flops = (structured.cost.flops(dense), structured.cost.flops(shrunk))
    total = {'parameters': {'before': parameters[0], 'after': parameters[1],
                            'kept': parameters[1] / parameters[0]},
             'flops': {'before': flops[0], 'after': flops[1],
                       'kept': flops[1] / flops[0]}}
    return layers, total


@pytest.mark.parametrize('name', ['json_graphdef', 'json_saved_model'])
def test_inspect_reports_channels_parameters_and_flops(runs, name):
    report = json.loads(_ok(runs, 'inspect', name))
    layers, total = _expected_report(runs['pruned'])
    assert report['layers'] == layers
    assert set(report['total']) == {'parameters', 'flops'}
    for key in ('parameters', 'flops'):
        assert report['total'][key] == pytest.approx(total[key])
    assert report['flops_convention'] == structured.cost.FLOPS_CONVENTION
    assert total['parameters']['kept'] < 0.6  # channels were removed


def test_inspect_table_shows_the_same_numbers(runs):
    lines = _ok(runs, 'inspect', 'table').splitlines()
    layers, total = _expected_report(runs['pruned'])
    assert lines[0].split() == ['layer', 'class', 'channels', 'parameters',
                                'FLOPs']

    def arrow(value):
        return [str(value['before']), '->', str(value['after'])]

    assert [line.split() for line in lines[1:-2]] == [
        [row['layer'], row['class'], *arrow(row['channels']),
         *arrow(row['parameters']), *arrow(row['flops'])] for row in layers]
    assert lines[-2].split() == ['total', *arrow(total['parameters']),
                                 *arrow(total['flops'])]
    assert lines[-1].split() == [
        'kept', f'{total["parameters"]["kept"]:.4f}',
        f'{total["flops"]["kept"]:.4f}']


@pytest.mark.parametrize('name,expected', [
    ('weight_pruned', '--pruned takes a model pruned with structure=channel '
                      '(a training directory or .keras file), and '
                      '{root}/weights.keras is pruned with structure=weight'),
    ('tflite', '{shrunk} is a TFLite file, whose converter folds biases and '
               'BatchNormalization into other tensors'),
    ('not_shrunk', 'stem/kernel is 3x3x3x8 in {root}/plain.keras, but 3x3x3x4 '
                   'in the model shrunk from {root}/train: {root}/plain.keras '
                   'is not that model'),
])
def test_inspect_bad_input_is_one_line(runs, name, expected):
    line = _error_line(runs, 'inspect', name)
    expected = expected.format(root=runs['root'], shrunk=_path(runs, 'tflite'))
    assert line.startswith(f'inspect_sparsity: {expected}'), line
