"""`tf_prune.sensitivity`: the scan table, resuming, and the suggested spec."""

import csv
import json
import re

import keras
import numpy as np
import pytest

import tf_prune
from tf_prune import sensitivity
from tf_prune.sensitivity.data import DataError
from tf_prune.structured import cost

SPARSITIES = (0.25, 0.5, 0.75)
_L = keras.layers


@pytest.fixture(scope='module')
def trained():
    """A small CNN trained on a toy task, its data and an evaluate."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((256, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean((1, 2, 3)) > 0.5) * 2 + (x[:, :, :4].mean((1, 2, 3))
                                                 > 0.5)
    image = keras.Input((8, 8, 1))
    h = _L.Conv2D(8, 3, activation='relu', name='c1')(image)
    h = _L.BatchNormalization(name='bn')(h)
    h = _L.Conv2D(16, 3, activation='relu', name='c2')(h)
    h = _L.GlobalAveragePooling2D()(h)
    h = _L.Dense(16, activation='relu', name='d1')(h)
    model = keras.Model(image, _L.Dense(4, name='out')(h))
    model.compile('adam', keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    model.fit(x, y, epochs=30, batch_size=32, verbose=0)
    return model, x, y, sensitivity.accuracy(x, y)


@pytest.fixture(scope='module')
def weight_scan(trained):
    """The weight scan of `trained`'s model at SPARSITIES, for the tests
    that read it (the first test makes its own, to check the model is kept
    as it was)."""
    model, _, _, evaluate = trained
    return sensitivity.scan(model, evaluate, SPARSITIES, verbose=0)


def _values(model):
    return [w.numpy().copy() for w in model.weights]


def test_the_weight_table_is_each_weight_pruned_alone_and_the_model_is_kept(
        trained):
    model, _, _, evaluate = trained
    before = _values(model)
    result = sensitivity.scan(model, evaluate, SPARSITIES, verbose=0)
    assert [w.tobytes() for w in _values(model)] == [
        w.tobytes() for w in before]
    assert [u.name for u in result.units] == [
        'c1/kernel', 'c2/kernel', 'd1/kernel', 'out/kernel']
    assert result.base_metric == evaluate(model)
    assert result.flops == cost.flops(model)
    for row in result.rows:
        weight = model.get_layer(row.unit.split('/')[0]).kernel
        original = weight.numpy()
        _, mask = tf_prune.update_mask(original, row.sparsity)
        weight.assign(original * mask.numpy())
        try:
            assert row.metric == evaluate(model)
        finally:
            weight.assign(original)
        zeros = int(mask.numpy().size - np.count_nonzero(mask.numpy()))
        assert row.parameters_removed == zeros
    c2 = next(r for r in result.rows if (r.unit, r.sparsity) == ('c2/kernel', 0.5))
    assert c2.flops_removed == 2 * c2.parameters_removed * 4 * 4


def test_a_channel_row_removes_what_shrink_removes(trained):
    model, _, _, evaluate = trained
    before = _values(model)
    result = sensitivity.scan(model, evaluate, (0.5,), structure='channel',
                              verbose=0)
    assert [w.tobytes() for w in _values(model)] == [
        w.tobytes() for w in before]
    assert [u.name for u in result.units] == ['c1', 'c2', 'd1']
    row = next(r for r in result.rows if r.unit == 'c2')
    # The same group pruned alone through the public API.
    spec = ('structure=channel,target_sparsity=0.5,'
            'weight_sparsity_map=[^c1/kernel$:0,^c2/kernel$:0.5,^d1/kernel$:0]')
    pruned = tf_prune.prune(model, spec, one_shot=True)
    shrunk = tf_prune.shrink(pruned)
    assert row.parameters_removed == model.count_params() - shrunk.count_params()
    assert row.flops_removed == cost.flops(model) - cost.flops(shrunk)
    assert row.metric == evaluate(pruned)


def test_an_interrupted_scan_resumes_from_its_results_file(trained, weight_scan,
                                                          tmp_path):
    model, _, _, evaluate = trained
    before = _values(model)
    path = tmp_path / 'scan.json'
    calls = []

    def interrupted(m):
        calls.append(1)
        if len(calls) == 5:  # the base, then four rows
            raise KeyboardInterrupt
        return evaluate(m)

    with pytest.raises(KeyboardInterrupt):
        sensitivity.scan(model, interrupted, SPARSITIES, verbose=0,
                         results_path=str(path))
    assert [w.tobytes() for w in _values(model)] == [
        w.tobytes() for w in before]
    assert len(json.loads(path.read_text())['rows']) == 3
    counted = []

    def counting(m):
        counted.append(1)
        return evaluate(m)

    resumed = sensitivity.scan(model, counting, SPARSITIES, verbose=0,
                               results_path=str(path))
    assert len(counted) == 1 + 12 - 3  # the base metric, checked, then the rest
    assert resumed.rows == weight_scan.rows
    assert sensitivity.ScanResult.from_json(str(path)).rows == weight_scan.rows
    with pytest.raises(ValueError, match='holds another scan'):
        sensitivity.scan(model, evaluate, (0.5,), verbose=0,
                         results_path=str(path))


def test_the_suggestion_parses_matches_every_weight_and_holds_its_budget(
        trained, weight_scan, caplog):
    model, _, _, evaluate = trained
    result = weight_scan
    suggestion = sensitivity.suggest(result, 0.02, model, evaluate)
    hparams = tf_prune.get_pruning_hparams().parse(suggestion.spec).validate()
    assert hparams.structure == 'weight'
    caplog.clear()
    pruned = tf_prune.prune(model, suggestion.spec, one_shot=True)
    assert 'matches no pruned weight' not in caplog.text
    assert result.base_metric - evaluate(pruned) <= 0.02
    assert suggestion.drop == pytest.approx(result.base_metric - evaluate(pruned))
    sparsities = {p.name: float(1 - p.mask.numpy().mean())
                  for w in tf_prune.keras.wrapper.find_wrappers(pruned)
                  for p in w.pruned_weights}
    for name, sparsity in suggestion.sparsities.items():
        assert sparsities[name] == pytest.approx(sparsity, abs=0.02)
    assert suggestion.parameters_removed == sum(
        next(r.parameters_removed for r in result.rows
             if (r.unit, r.sparsity) == (name, s))
        for name, s in suggestion.sparsities.items() if s)
    assert suggestion.parameters_removed > 0


def _with_drops(result, drop_of):
    """`result` with each row's metric the base less `drop_of(row)`."""
    return sensitivity.ScanResult(
        result.structure, result.criterion, result.sparsities,
        result.base_metric, result.units,
        [sensitivity.Row(r.unit, r.sparsity, result.base_metric - drop_of(r),
                         r.parameters_removed, r.flops_removed)
         for r in result.rows], result.parameters, result.flops)


def _check_backed_off(suggestion, model, evaluate, base, max_drop):
    """Asserts the tries back off to a suggestion that prunes something and
    holds `max_drop` on the whole model."""
    allocations = [tuple(t.sparsities.items()) for t in suggestion.tries]
    assert len(allocations) >= 2
    assert len(set(allocations)) == len(allocations)
    assert all(t.drop > max_drop for t in suggestion.tries[:-1])
    assert any(suggestion.sparsities.values())
    assert suggestion.tries[-1].sparsities == suggestion.sparsities
    metric = evaluate(tf_prune.prune(model, suggestion.spec, one_shot=True))
    assert base - metric <= max_drop
    assert suggestion.drop == base - metric


def test_suggest_backs_off_until_the_whole_model_holds_the_budget(
        trained, weight_scan):
    model, _, _, evaluate = trained
    result = weight_scan
    # Scanned drops that understate: a thousandth of the sparsity, so that
    # everything at 0.75 fits the budget, and breaks it on the whole model.
    optimistic = _with_drops(result, lambda row: 1e-3 * row.sparsity)
    suggestion = sensitivity.suggest(optimistic, 0.02, model, evaluate)
    assert suggestion.tries[0].sparsities == {
        u.name: SPARSITIES[-1] for u in result.units}
    _check_backed_off(suggestion, model, evaluate, result.base_metric, 0.02)
    # Each budget is below the scanned drop of the allocation before it.
    for before, after in zip(suggestion.tries, suggestion.tries[1:]):
        assert after.budget < sum(1e-3 * s for s in before.sparsities.values())


def test_suggest_gives_up_moves_the_scan_says_are_free(trained,
                                                       weight_scan):
    model, _, _, evaluate = trained
    result = weight_scan
    # No unit loses anything alone: every allocation fits any budget.
    free = _with_drops(result, lambda row: 0.0)
    suggestion = sensitivity.suggest(free, 0.01, model, evaluate)
    _check_backed_off(suggestion, model, evaluate, result.base_metric, 0.01)
    # Each try caps the most pruned unit one scanned sparsity lower.
    for before, after in zip(suggestion.tries, suggestion.tries[1:]):
        lowered = [unit for unit in before.sparsities
                   if after.sparsities[unit] != before.sparsities[unit]]
        assert len(lowered) == 1
        [unit] = lowered
        assert before.sparsities[unit] == max(before.sparsities.values())
        step = SPARSITIES.index(before.sparsities[unit])
        assert after.sparsities[unit] == (0.0, *SPARSITIES)[step]


def test_the_flops_objective_takes_what_removes_the_most_flops(trained):
    model, _, _, _ = trained
    result = sensitivity.scan(model, lambda m: 0.5, SPARSITIES, verbose=0)
    # c2 costs more than the budget; the others cost it all, at any
    # sparsity: one unit can go to 0.75. d1 has the most parameters of
    # those (256), c1 the most FLOPs (its kernel is applied at 6 x 6
    # positions).
    costs = _with_drops(result, lambda row: 1.0 if row.unit == 'c2/kernel'
                        else 0.1)

    def chosen(objective):
        suggestion = sensitivity.suggest(costs, 0.1, model, lambda m: 0.5,
                                         objective=objective)
        return suggestion, {u: s for u, s in suggestion.sparsities.items()
                            if s}

    by_parameters, parameters_choice = chosen('parameters')
    by_flops, flops_choice = chosen('flops')
    assert parameters_choice == {'d1/kernel': 0.75}
    assert flops_choice == {'c1/kernel': 0.75}
    assert by_parameters.parameters_removed > by_flops.parameters_removed
    assert by_flops.flops_removed > by_parameters.flops_removed
    row = next(r for r in result.rows
               if (r.unit, r.sparsity) == ('c1/kernel', 0.75))
    assert by_flops.flops_removed == row.flops_removed


def test_a_channel_suggestion_within_a_budget_that_binds(trained):
    model, _, _, evaluate = trained
    result = sensitivity.scan(model, evaluate, SPARSITIES,
                              structure='channel', verbose=0)
    suggestion = sensitivity.suggest(result, 0.01, model, evaluate)
    sparsities = suggestion.sparsities
    # Something pruned, not everything to the top: the budget binds.
    assert any(sparsities.values())
    assert min(sparsities.values()) < SPARSITIES[-1]
    assert suggestion.predicted_drop <= 0.01
    assert tf_prune.get_pruning_hparams().parse(
        suggestion.spec).structure == 'channel'
    pruned = tf_prune.prune(model, suggestion.spec, one_shot=True)
    assert result.base_metric - evaluate(pruned) <= 0.01
    assert suggestion.metric == evaluate(pruned)
    shrunk = tf_prune.shrink(pruned)
    assert suggestion.parameters_removed == (
        model.count_params() - shrunk.count_params())


def test_results_write_as_csv_and_png(trained, tmp_path):
    model, _, _, evaluate = trained
    result = sensitivity.scan(model, evaluate, (0.5,), verbose=0)
    result.to_csv(str(tmp_path / 'scan.csv'))
    with open(tmp_path / 'scan.csv') as file:
        rows = list(csv.DictReader(file))
    assert [(r['unit'], float(r['metric'])) for r in rows] == [
        (r.unit, r.metric) for r in result.rows]
    result.plot(str(tmp_path / 'scan.png'))
    assert (tmp_path / 'scan.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    table = result.format_table().splitlines()
    assert table[0].split() == ['unit', 'parameters', '0.5']
    assert table[1].split()[:2] == ['(base)', f'{model.count_params():,}']
    assert table[3].split()[:2] == ['c2/kernel', '1,152']


def test_the_csv_quotes_a_layer_name_with_a_comma_and_a_quote(tmp_path):
    # Keras takes `dense,"1"` as a layer name; its weight is the unit.
    unit = 'dense,"1"/kernel'
    result = sensitivity.ScanResult(
        'weight', 'l1', (0.5,), 0.75, [sensitivity.Unit(unit, f'^{unit}$', 6)],
        [sensitivity.Row(unit, 0.5, 0.625, 3, None)], 12, None)
    result.to_csv(str(tmp_path / 'scan.csv'))
    with open(tmp_path / 'scan.csv', newline='') as file:
        [row] = list(csv.DictReader(file))
    assert row == {'unit': unit, 'sparsity': '0.5', 'metric': '0.625',
                   'parameters_removed': '3', 'flops_removed': ''}


def test_bad_input_is_refused(trained):
    model, _, _, evaluate = trained
    for sparsities in [(), (0.5, 1.0), (0.0,), (0.5, 0.5)]:
        with pytest.raises(ValueError, match='sparsities must be distinct '
                           r'values in \(0, 1\)'):
            sensitivity.scan(model, evaluate, sparsities, verbose=0)
    with pytest.raises(ValueError, match=r"layers \['nope'\] are not units"):
        sensitivity.scan(model, evaluate, (0.5,), layers=['nope'], verbose=0)
    with pytest.raises(ValueError, match='must return a scalar metric'):
        sensitivity.scan(model, lambda m: 'good', (0.5,), verbose=0)
    with pytest.raises(ValueError, match='taylor needs the gradients'):
        sensitivity.scan(model, evaluate, (0.5,), structure='channel',
                         criterion='taylor', verbose=0)
    with pytest.raises(ValueError, match='structure must be one of'):
        sensitivity.scan(model, evaluate, (0.5,), structure='block', verbose=0)
    no_norm = keras.Sequential([keras.Input((3,)), _L.Dense(4, name='d'),
                                _L.Dense(2, name='out')], name='no_norm')
    with pytest.raises(ValueError, match=(
            r'^no_norm has no channel group the bn_scale criterion can score '
            r'\(.*\); scan with l1 or l2$')):
        sensitivity.scan(no_norm, lambda m: 1.0, (0.5,), structure='channel',
                         criterion='bn_scale', verbose=0)
    result = sensitivity.scan(model, evaluate, (0.5,), layers=['d1/kernel'],
                              verbose=0)
    with pytest.raises(ValueError, match='max_drop must be a finite value'):
        sensitivity.suggest(result, -1, model, evaluate)
    with pytest.raises(ValueError, match='objective must be one of'):
        sensitivity.suggest(result, 0.01, model, evaluate, objective='speed')
    without_flops = sensitivity.ScanResult(**{**vars(result), 'flops': None})
    with pytest.raises(ValueError, match='the scan has no FLOPs'):
        sensitivity.suggest(without_flops, 0.01, model, evaluate,
                            objective='flops')


def test_evaluation_data_must_be_an_npz_archive(tmp_path):
    path = tmp_path / 'single.npz'
    with open(path, 'wb') as file:  # np.save would add .npy to the name
        np.save(file, np.zeros(3))
    with pytest.raises(DataError, match=re.escape(
            f'{path} holds a single array, not an .npz archive; save x_test '
            f'and y_test in it with numpy.savez')):
        sensitivity.load_evaluation_data(str(path))
