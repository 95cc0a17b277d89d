"""docs/benchmarks.md against benchmarks/results/, and the paired statistic
of benchmarks/train_overhead.py. No benchmark runs here."""

import json
import sys

import numpy as np
import pytest

from tests.conftest import ROOT

BENCHMARKS = str(ROOT / 'benchmarks')
if BENCHMARKS not in sys.path:
    sys.path.insert(0, BENCHMARKS)

import paired  # noqa: E402  pylint: disable=wrong-import-position
import render_docs  # noqa: E402  pylint: disable=wrong-import-position


def test_doc_is_rendered_from_the_committed_results():
    rendered = render_docs.render(str(ROOT / 'benchmarks' / 'results'))
    committed = (ROOT / 'docs' / 'benchmarks.md').read_bytes()
    assert rendered.encode() == committed, (
        'docs/benchmarks.md is stale: run python benchmarks/render_docs.py')


def _old_steady_ratio(times, reference):
    """The replaced statistic: each model's mean over its own rounds at most
    25% slower than its median round, one mean over the other."""
    def steady_mean(t):
        t = np.array(t, dtype=float)
        return t[t <= 1.25 * np.median(t)].mean()
    return steady_mean(times) / steady_mean(reference)


def test_a_stall_on_both_sides_leaves_the_median_ratio():
    dense = [1000.0] * 10
    pruned = [1020.0] * 10
    # A slow spell adds the same 252 ms to both models' round 3: dense's
    # round is then more than 25% above its median, pruned's is not.
    dense[3] += 252
    pruned[3] += 252
    summary = paired.summarize(paired.round_ratios(pruned, dense))
    assert summary['median'] == pytest.approx(1.02)
    assert summary['p25'] == pytest.approx(1.02)
    assert summary['max'] == pytest.approx(1.02)
    assert summary['min'] == pytest.approx(1272 / 1252)
    assert summary['rounds'] == 10
    # The old statistic dropped dense's slow round and kept pruned's.
    assert _old_steady_ratio(pruned, dense) == pytest.approx(1.0452)


def test_a_stall_scales_both_sides_alike():
    dense = [1000.0, 1010.0, 990.0, 1005.0, 995.0]
    pruned = [1.03 * t for t in dense]
    stalled = paired.round_ratios([2 * pruned[0]] + pruned[1:],
                                  [2 * dense[0]] + dense[1:])
    assert stalled == pytest.approx([1.03] * 5)


def test_summary_of_ratios():
    assert paired.summarize([5.0, 1.0, 4.0, 2.0, 3.0]) == {
        'rounds': 5, 'median': 3.0, 'p25': 2.0, 'p75': 4.0, 'min': 1.0,
        'max': 5.0}
    with pytest.raises(ValueError, match='3 rounds against 2'):
        paired.round_ratios([1, 2, 3], [1, 2])


def test_summary_rows():
    round_ms = {'dense': [1000.0, 1000.0, 3000.0],
                'pruned': [1100.0, 1050.0, 3000.0]}
    dense, pruned = paired.summary_rows(round_ms, 20, 'dense')
    assert dense == {'model': 'dense', 'rounds': 3, 'mean_step_ms': 83.33,
                     'ratio_of_means': 1.0}
    assert pruned == {'model': 'pruned', 'rounds': 3, 'mean_step_ms': 85.83,
                      'ratio_of_means': 1.03, 'ratio_median': 1.05,
                      'ratio_p25': 1.025, 'ratio_p75': 1.075,
                      'ratio_min': 1.0, 'ratio_max': 1.1}


def test_rendered_paired_table(tmp_path):
    round_ms = {'dense': [1000.0, 1000.0], 'pruned, frequency 10':
                [1040.0, 1020.0]}
    result = {'batch': 128, 'rounds': 2, 'steps_per_round': 100,
              'steps_per_turn': 10, 'warmup_steps': 100, 'timed_steps': 200,
              'turn_order': ['pruned, frequency 10', 'dense'],
              'round_ms': round_ms,
              'rows': paired.summary_rows(round_ms, 100, 'dense')}
    (tmp_path / 'train_overhead.json').write_text(json.dumps(result))
    page = render_docs.render(str(tmp_path))
    assert page == render_docs.render(str(tmp_path))
    assert ('| pruned, frequency 10 | 2 | 1.030 | 1.025 | 1.035 | 1.020 | '
            '1.040 | 10.3 | 1.030 | - |') in page
    assert 'median of ratio_r over the 2 rounds' in page
    assert '- `train_overhead.json`: machine not recorded' in page
    assert '- `mask_update.json`: no results' in page


def test_committed_overhead_results_recompute():
    with open(ROOT / 'benchmarks' / 'results' / 'train_overhead.json') as f:
        result = json.load(f)
    if 'round_ms' not in result:
        pytest.skip('train_overhead.json holds no per-round times')
    rows = paired.summary_rows(result['round_ms'], result['steps_per_round'],
                               'dense')
    for recorded, recomputed in zip(result['rows'], rows):
        assert {key: recorded[key] for key in recomputed} == recomputed
