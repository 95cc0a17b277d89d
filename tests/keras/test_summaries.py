"""The "Pruning" custom-scalars dashboard, read back through TensorBoard's plugins."""

import keras
import numpy as np
import pytest

import tf_prune
from tests.helpers.tensorboard_read import LogDir
from tf_prune.keras import summaries

SPEC = ('name=rows,pruning_frequency=2,sparsity_function_end_step=6,'
        'target_sparsity=0.5')


def _train(log_dir, steps=9):
    model = tf_prune.prune(keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(6, name='fc'),
         keras.layers.Dense(2, name='out')], name='two_fc'))
    model.compile('sgd', 'mse')
    rng = np.random.default_rng(1)
    callback = tf_prune.PruningCallback(SPEC, log_dir=str(log_dir))
    model.fit(rng.random((steps * 4, 4)), rng.random((steps * 4, 2)),
              batch_size=4, verbose=0, callbacks=[callback])
    return callback.pruning


def test_layout_groups_contribs_tags_into_one_pruning_category(tmp_path):
    pruning = _train(tmp_path)
    log_dir = LogDir(tmp_path)
    categories = log_dir.layout()['category']
    assert [c['title'] for c in categories] == ['Pruning']
    charts = {c['title']: c['multiline']['tag'] for c in categories[0]['chart']}
    assert len(charts) == 4
    selected = {title: {tag: series for regex in regexes
                        for tag, series in log_dir.chart_series(
                            '.', regex).items()}
                for title, regexes in charts.items()}
    target, masks, thresholds, last_update = selected.values()
    assert sorted(target) == ['rows_summaries/model_sparsity',
                              'rows_summaries/sparsity']
    assert sorted(masks) == ['rows_summaries/fc/mask/sparsity',
                             'rows_summaries/out/mask/sparsity']
    assert sorted(thresholds) == ['rows_summaries/fc/threshold/threshold',
                                  'rows_summaries/out/threshold/threshold']
    assert list(last_update) == ['rows_summaries/last_mask_update_step']
    # Updates at 2, 4, 6, 8, then the final state at step 9, once each.
    for series in [*target.values(), *masks.values(), *thresholds.values()]:
        assert [step for step, _ in series] == [2, 4, 6, 8, 9]
    assert [v for _, v in last_update['rows_summaries/last_mask_update_step']] == [
        2, 4, 6, 8, 8]
    # Reached against target: 6*4 + 2*6 = 36 kernel entries, 18 pruned at 0.5.
    assert target['rows_summaries/sparsity'][-1][1] == pytest.approx(0.5)
    assert target['rows_summaries/model_sparsity'][-1][1] == pytest.approx(0.5)
    assert thresholds['rows_summaries/fc/threshold/threshold'][-1][1] == (
        pytest.approx(float(pruning.get_thresholds()[0].numpy())))


def test_a_final_update_is_recorded_once(tmp_path):
    _train(tmp_path, steps=8)
    series = LogDir(tmp_path).chart_series('.', '^rows_summaries/sparsity$')
    assert [step for step, _ in series['rows_summaries/sparsity']] == [2, 4, 6, 8]


def test_layout_escapes_the_hparams_name():
    hparams = tf_prune.get_pruning_hparams().parse('name=a.b+c')
    tags = [tag for chart in summaries.dashboard_layout(hparams).category[0].chart
            for tag in chart.multiline.tag]
    assert tags[0] == r'^a\.b\+c_summaries/sparsity$'
