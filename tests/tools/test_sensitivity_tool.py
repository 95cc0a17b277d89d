"""tools/sensitivity_scan.py, run as users run it, on a tiny trained CNN.

Every row runs in one process (`tests/helpers/tool_driver.py`), which runs
the tool's `main` per row, as a user runs it, capturing its file
descriptors 1 and 2 (TensorFlow's own output would show too). The rows'
figures are checked against the library run here, in the test's process.
"""

import json
import shlex

import keras
import numpy as np
import pytest

import tf_prune
from tests.conftest import ROOT
from tests.helpers.tool_driver import refusal_line, run_rows
from tf_prune import sensitivity

TOOL = ROOT / 'tools' / 'sensitivity_scan.py'
SPARSITIES = (0.4, 0.8)
PREFIX = 'sensitivity_scan: '
L = keras.layers


def _cnn():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1), name='images')
    x = L.Conv2D(6, 3, activation='relu', name='conv')(inputs)
    x = L.Flatten(name='flatten')(x)
    x = L.Dense(12, activation='relu', name='fc')(x)
    return keras.Model(inputs, L.Dense(4, activation='softmax',
                                       name='probabilities')(x), name='tiny')


def _data(examples=300):
    """Four classes: the signs of two regions' means."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((examples, 8, 8, 1)).astype(np.float32)
    y = ((x[:, :4].mean(axis=(1, 2, 3)) > 0).astype(np.int64)
         + 2 * (x[:, :, :4].mean(axis=(1, 2, 3)) > 0))
    return x, y


# Rows of the driver's run: (name, flags); {root} is the inputs' directory,
# {out} the row's output directory.
GOOD_ROWS = [
    ('scan', ['--model={root}/tiny.keras', '--data={root}/data.npz',
              '--sparsities=0.4,0.8', '--output_dir={out}']),
    # out_resume holds the first rows of the scan, their metrics altered.
    ('resume', ['--model={root}/tiny.keras', '--data={root}/data.npz',
                '--sparsities=0.8,0.4', '--output_dir={out}']),
    ('channels', ['--model={root}/tiny.keras', '--data={root}/data.npz',
                  '--structure=channel', '--sparsities=0.5',
                  '--max_drop=100', '--output_dir={out}']),
    # A training directory: its model is pruned.
    ('pruned', ['--model={root}/train', '--data={root}/data.npz',
                '--sparsities=0.8']),
]
BAD_ROWS = [
    ('missing_model', ['--model={root}/missing.keras',
                       '--data={root}/data.npz', '--output_dir={out}'],
     '{root}/missing.keras does not exist'),
    ('corrupt_model', ['--model={root}/corrupt.keras',
                       '--data={root}/data.npz', '--output_dir={out}'],
     '{root}/corrupt.keras is not a readable .keras file: it is not a zip '
     'archive (truncated, or another kind of file)'),
    # np.load reads a lone .npy array whatever the file's name.
    ('single_array_data', ['--model={root}/tiny.keras',
                           '--data={root}/single.npz', '--output_dir={out}'],
     '{root}/single.npz holds a single array, not an .npz archive; save '
     'x_test and y_test in it with numpy.savez'),
    ('data_of_another_shape', ['--model={root}/tiny.keras',
                               '--data={root}/wide.npz', '--output_dir={out}'],
     '--data={root}/wide.npz: x_test holds float32 examples of shape '
     '(8, 9, 1); tiny takes (8, 8, 1)'),
    ('labels_out_of_range', ['--model={root}/tiny.keras',
                             '--data={root}/labels.npz', '--output_dir={out}'],
     '--data={root}/labels.npz: y_test holds labels from 0 to 9; tiny scores '
     '4 classes, 0 to 3'),
    ('nothing_prunable', ['--model={root}/nothing.keras',
                          '--data={root}/data.npz', '--output_dir={out}'],
     'nothing has no layer tf_prune can prune (Dense, Conv, Embedding, RNN, '
     'MultiHeadAttention, ... or a layer with get_prunable_weights())'),
    ('no_channels', ['--model={root}/nothing.keras', '--data={root}/data.npz',
                     '--structure=channel', '--output_dir={out}'],
     'nothing has no channel that can be removed '),
    ('bn_scale_without_batch_norm', [
        '--model={root}/tiny.keras', '--data={root}/data.npz',
        '--structure=channel', '--criterion=bn_scale', '--output_dir={out}'],
     'tiny has no channel group the bn_scale criterion can score (it ranks '
     'channels by the gamma of a BatchNormalization in their group, and no '
     'group has one); scan with l1 or l2'),
    ('sparsity_above_1', ['--model={root}/tiny.keras',
                          '--data={root}/data.npz', '--sparsities=0.5,1.5',
                          '--output_dir={out}'],
     "--sparsities=0.5,1.5: '1.5' is not a sparsity in (0, 1); give distinct "
     'values such as 0.3,0.6,0.9'),
    ('sparsity_repeated', ['--model={root}/tiny.keras',
                           '--data={root}/data.npz', '--sparsities=0.5,0.5',
                           '--output_dir={out}'],
     '--sparsities=0.5,0.5: give distinct sparsities in (0, 1), such as '
     '0.3,0.6,0.9'),
    ('negative_max_drop', ['--model={root}/tiny.keras',
                           '--data={root}/data.npz', '--max_drop=-1',
                           '--output_dir={out}'],
     '--max_drop=-1: give the largest acceptable drop in points (1.0 = 0.01 '
     'accuracy), 0 or more'),
    # out_another_scan holds a scan at other sparsities: left as it is.
    ('another_scan', ['--model={root}/tiny.keras', '--data={root}/data.npz',
                      '--sparsities=0.4,0.8', '--output_dir={out}'],
     '--output_dir={out} holds the scan.json of another scan (its '
     'sparsities differ); remove it or choose another --output_dir'),
]
DONE_BEFORE_RESUME = 3
ALTERED_METRIC = 0.125


def _run_driver(root, rows):
    return run_rows(TOOL, [
        (name, [arg.format(root=root, out=root / f'out_{name}')
                for arg in args]) for name, args in rows], root)


def _tree(directory):
    return sorted((str(p.relative_to(directory)),
                   p.read_bytes() if p.is_file() else None)
                  for p in directory.rglob('*')
                  if p.name not in ('plan_sensitivity_scan.json',
                                    'results_sensitivity_scan.json'))


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """The inputs, the library's scan of them, and every row's result.

    Returns:
      `(root, {row name: result}, the library's ScanResult, the model, the
      evaluate function)`.
    """
    root = tmp_path_factory.mktemp('sensitivity_tool')
    x, y = _data()
    model = _cnn()
    model.compile(keras.optimizers.Adam(0.01),
                  'sparse_categorical_crossentropy')
    model.fit(x, y, batch_size=50, epochs=15, verbose=0)
    model.save(root / 'tiny.keras')
    np.savez(root / 'data.npz', x_test=x, y_test=y)
    np.savez(root / 'wide.npz', x_test=np.zeros((20, 8, 9, 1), np.float32),
             y_test=y[:20])
    np.savez(root / 'labels.npz', x_test=x, y_test=np.arange(len(y)) % 10)
    with open(root / 'single.npz', 'wb') as file:  # np.save adds .npy
        np.save(file, x)
    (root / 'corrupt.keras').write_bytes(b'not a zip archive\n')
    spec = ('target_sparsity=0.5,begin_pruning_step=0,pruning_frequency=1,'
            'sparsity_function_end_step=2')
    pruned = tf_prune.prune(model, spec)  # the trained weights, masked
    pruned.compile('sgd', 'sparse_categorical_crossentropy')
    pruned.fit(x[:100], y[:100], batch_size=25, verbose=0, callbacks=[
        tf_prune.PruningCallback(spec, checkpoint_dir=str(root / 'train'))])
    keras.Sequential([keras.Input((8, 8, 1)), L.Flatten(),
                      L.BatchNormalization(), L.Softmax()],
                     name='nothing').save(root / 'nothing.keras')

    loaded = keras.saving.load_model(root / 'tiny.keras')
    evaluate = sensitivity.accuracy(x, y)
    expected = sensitivity.scan(loaded, evaluate, SPARSITIES, verbose=0)
    partial = sensitivity.ScanResult(**{
        **vars(expected),
        'rows': [sensitivity.Row(**{**vars(r), 'metric': ALTERED_METRIC})
                 for r in expected.rows[:DONE_BEFORE_RESUME]]})
    partial.to_json(root / 'out_resume' / 'scan.json')
    sensitivity.scan(loaded, evaluate, (0.5,), verbose=0).to_json(
        root / 'out_another_scan' / 'scan.json')
    (root / 'out_scan').mkdir()
    (root / 'out_scan' / 'notes.txt').write_text('the user\'s\n')

    before = _tree(root)
    rows = _run_driver(root, GOOD_ROWS + [row[:2] for row in BAD_ROWS])
    changed = {path for path, _ in set(_tree(root)) ^ set(before)}
    assert {path.split('/')[0] for path in changed} <= {
        'out_scan', 'out_resume', 'out_channels'}, changed
    return root, rows, expected, loaded, evaluate


def _ok(result):
    assert result['returncode'] == 0, result['stderr'][-3000:]
    assert result['stderr'] == ''
    return result['stdout']


def _printed_spec(stdout):
    [line] = [line for line in stdout.splitlines()
              if line.strip().startswith('--pruning_hparams=')]
    [flag] = shlex.split(line)
    return flag.split('=', 1)[1]


def _comparison(stdout):
    """`{row: (parameters, metric)}` of the printed comparison."""
    found = {}
    for line in stdout.splitlines():
        words = line.split()
        if words[:1] in (['as'], ['suggested'], ['uniform']):
            name = ' '.join(words[:-3])
            found[name] = (int(words[-3].replace(',', '')), float(words[-1]))
    return found


def test_writes_the_librarys_scan_as_json_csv_and_png(runs):
    root, rows, expected, _, _ = runs
    stdout = _ok(rows['scan'])
    out = root / 'out_scan'
    assert sensitivity.ScanResult.from_json(out / 'scan.json') == expected
    assert expected.format_table() in stdout
    csv = (out / 'scan.csv').read_text().splitlines()
    assert csv[0] == 'unit,sparsity,metric,parameters_removed,flops_removed'
    assert len(csv) == 1 + 3 * len(SPARSITIES)
    assert (out / 'notes.txt').read_text() == 'the user\'s\n'
    assert (out / 'scan.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert stdout.endswith(
        f'Wrote {out}/scan.json, {out}/scan.csv, {out}/scan.png, '
        f'{out}/suggestion.json\n')
    assert sorted(p.name for p in out.iterdir()) == [
        'notes.txt', 'scan.csv', 'scan.json', 'scan.png', 'suggestion.json']


def test_the_printed_spec_parses_and_keeps_the_budget(runs):
    root, rows, expected, model, evaluate = runs
    spec = _printed_spec(_ok(rows['scan']))
    hparams = tf_prune.get_pruning_hparams().parse(spec)
    assert hparams.structure == 'weight'
    summary = json.loads((root / 'out_scan' / 'suggestion.json').read_text())
    assert summary['suggested']['spec'] == spec
    assert summary['max_drop'] == 0.01
    # The last allocation suggest checked is the one suggested.
    last = summary['suggested']['tries'][-1]
    assert last['sparsities'] == summary['suggested']['sparsities']
    assert last['drop'] == summary['suggested']['drop']
    # The spec prunes something, within one point, as the tool measured it.
    assert any(summary['suggested']['sparsities'].values())
    metric = evaluate(tf_prune.prune(model, spec, one_shot=True))
    assert metric == summary['suggested']['metric']
    assert expected.base_metric - metric <= 0.01


def test_uniform_leaves_the_suggestions_parameters(runs):
    root, rows, expected, model, evaluate = runs
    stdout = _ok(rows['scan'])
    summary = json.loads((root / 'out_scan' / 'suggestion.json').read_text())
    suggested, uniform = summary['suggested'], summary['uniform']
    assert sensitivity.parameters_after(model, suggested['spec']) == (
        suggested['parameters'])
    assert sensitivity.parameters_after(model, uniform['spec']) == (
        uniform['parameters'])
    # Equal up to one weight element: whole elements move at each sparsity.
    assert abs(uniform['parameters'] - suggested['parameters']) <= 1
    assert uniform['metric'] == evaluate(
        tf_prune.prune(model, uniform['spec'], one_shot=True))
    # The search's counts are parameters_after's.
    search = sensitivity.UniformPruning(model)
    for sparsity in (0.3, uniform['target_sparsity']):
        assert search.parameters(sparsity) == sensitivity.parameters_after(
            model, search.spec(sparsity))
    hparams = tf_prune.get_pruning_hparams().parse(uniform['spec'])
    assert hparams.target_sparsity == pytest.approx(
        uniform['target_sparsity'], rel=1e-6)
    assert not any(hparams.weight_sparsity_map)
    assert _comparison(stdout) == {
        'as given': (model.count_params(), expected.base_metric),
        'suggested': (suggested['parameters'],
                      round(suggested['metric'], 4)),
        f"uniform {uniform['target_sparsity']:.4f}": (
            uniform['parameters'], round(uniform['metric'], 4))}


def test_channel_groups_against_uniform_channel_pruning(runs):
    root, rows, _, model, evaluate = runs
    stdout = _ok(rows['channels'])
    out = root / 'out_channels'
    expected = sensitivity.scan(model, evaluate, (0.5,), structure='channel',
                                verbose=0)
    assert sensitivity.ScanResult.from_json(out / 'scan.json') == expected
    assert [u.name for u in expected.units] == ['conv', 'fc']
    summary = json.loads((out / 'suggestion.json').read_text())
    suggested, uniform = summary['suggested'], summary['uniform']
    # A budget of 100 points takes every group to 0.5.
    assert suggested['sparsities'] == {'conv': 0.5, 'fc': 0.5}
    hparams = tf_prune.get_pruning_hparams().parse(_printed_spec(stdout))
    assert hparams.structure == 'channel'
    # Parameters of the shrunk models: 3 of 6 filters and 6 of 12 units.
    shrunk = tf_prune.shrink(tf_prune.prune(model, suggested['spec'],
                                            one_shot=True))
    assert suggested['parameters'] == shrunk.count_params()
    assert (shrunk.get_layer('conv').filters,
            shrunk.get_layer('fc').units) == (3, 6)
    assert sensitivity.parameters_after(model, uniform['spec']) == (
        uniform['parameters'])
    assert uniform['target_sparsity'] == pytest.approx(0.5, abs=0.05)
    assert uniform['parameters'] == suggested['parameters']


def test_an_interrupted_scan_continues_from_its_json(runs):
    root, rows, expected, _, _ = runs
    stdout = _ok(rows['resume'])
    path = root / 'out_resume' / 'scan.json'
    assert (f'{path} holds {DONE_BEFORE_RESUME} of them: the scan '
            f'continues.') in stdout
    resumed = sensitivity.ScanResult.from_json(path)
    # The rows found were kept (their metrics are the altered ones), the
    # others scanned.
    assert [r.metric for r in resumed.rows[:DONE_BEFORE_RESUME]] == [
        ALTERED_METRIC] * DONE_BEFORE_RESUME
    assert resumed.rows[DONE_BEFORE_RESUME:] == (
        expected.rows[DONE_BEFORE_RESUME:])
    assert [(r.unit, r.sparsity) for r in resumed.rows] == [
        (r.unit, r.sparsity) for r in expected.rows]


def test_a_pruned_model_is_scanned_stripped(runs):
    root, rows, _, _, evaluate = runs
    stdout = _ok(rows['pruned'])
    assert stdout.startswith(
        f'{root}/train holds a pruned model: it is scanned stripped, its '
        f'masks folded into its weights (strip_pruning).\n')
    stripped = tf_prune.strip_pruning(
        tf_prune.checkpoints.load_model(root / 'train'))
    kernel = stripped.get_layer('fc').kernel.numpy()
    assert np.mean(kernel == 0) == pytest.approx(0.5, abs=0.01)
    expected = sensitivity.scan(stripped, evaluate, (0.8,), verbose=0)
    assert expected.format_table() in stdout
    assert 'Wrote' not in stdout


@pytest.mark.parametrize('name,args,line', BAD_ROWS,
                         ids=[row[0] for row in BAD_ROWS])
def test_bad_input_is_one_line_exit_2_and_nothing_written(runs, name, args,
                                                          line):
    root, rows, _, _, _ = runs
    result = rows[name]
    printed = refusal_line(result)
    assert printed.startswith(
        PREFIX + line.format(root=root, out=root / f'out_{name}')), printed
    # The fixture checked that no file changed or appeared but in the good
    # rows' output directories.
    if name != 'another_scan':
        assert not (root / f'out_{name}').exists()
