"""The global and per-weight schedules, checked against contrib's traces."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import assume, given, settings, strategies as st

import tf_prune
from tests.conftest import load_golden

SCHEDULE = load_golden('schedule.json')


@pytest.mark.parametrize('case', SCHEDULE, ids=lambda c: c['spec'] or 'defaults')
def test_golden_schedule(case):
    hp = tf_prune.get_pruning_hparams().parse(case['spec'])
    for step, expected in zip(case['steps'], case['sparsity']):
        value = tf_prune.compute_sparsity(hp, step)
        assert value.dtype == tf.float32
        assert abs(float(value) - expected) <= 1e-6, step


def test_semantics_examples():
    hp = tf_prune.get_pruning_hparams()
    assert float(tf_prune.compute_sparsity(hp, 10)) == pytest.approx(0.13550004, abs=1e-7)
    assert float(tf_prune.compute_sparsity(hp, 50)) == 0.4375
    assert float(tf_prune.compute_sparsity(hp, 1000)) == 0.5


def test_step_may_be_a_tensor_inside_tf_function():
    hp = tf_prune.get_pruning_hparams()
    schedule = tf.function(lambda step: tf_prune.compute_sparsity(hp, step))
    for step in [0, 10, 50, 100, 5000]:
        expected = float(tf_prune.compute_sparsity(hp, step))
        assert float(schedule(tf.constant(step, tf.int64))) == expected
        assert float(schedule(tf.constant(step, tf.int32))) == expected


def test_weight_sparsity_scales_the_schedule():
    hp = tf_prune.get_pruning_hparams().parse(
        'initial_sparsity=0.2,target_sparsity=0.5,'
        'weight_sparsity_map=[conv1:0.9,conv2/kernel:0.8]')
    for step in [0, 30, 100]:
        base = float(tf_prune.compute_sparsity(hp, step))
        scale = np.float32(0.9) / np.float32(0.5)
        assert float(tf_prune.weight_sparsity(hp, 'conv1/kernel', step)) == (
            np.float32(base) * scale)
        assert float(tf_prune.weight_sparsity(hp, 'dense/kernel', step)) == base
    # Unanchored search: 'conv1' matches inside 'model/conv1/kernel'.
    assert float(tf_prune.weight_sparsity(hp, 'model/conv1/kernel', 100)) == (
        pytest.approx(0.9))


def test_multiple_matches_are_an_error():
    hp = tf_prune.get_pruning_hparams().parse(
        'weight_sparsity_map=[conv:0.9,kernel:0.8],'
        'block_dims_map=[conv:2x2,kernel:1x4]')
    with pytest.raises(ValueError, match='Multiple matches in weight_sparsity_map '
                                         'for weight conv1/kernel'):
        tf_prune.weight_sparsity(hp, 'conv1/kernel', 10)
    with pytest.raises(ValueError, match='Multiple matches in block_dims_map'):
        tf_prune.block_dims(hp, 'conv1/kernel')


def test_block_dims():
    hp = tf_prune.get_pruning_hparams().parse(
        'block_height=2,block_width=-1,block_dims_map=[dense1:4x4,dense2:1x16]')
    assert tf_prune.block_dims(hp, 'dense1/kernel') == [4, 4]
    assert tf_prune.block_dims(hp, 'dense2/kernel') == [1, 16]
    assert tf_prune.block_dims(hp, 'conv1/kernel') == [2, -1]


def test_mask_update_due_examples():
    hp = tf_prune.get_pruning_hparams().parse(
        'begin_pruning_step=5,end_pruning_step=40,pruning_frequency=10')
    due = tf.function(lambda step, last: tf_prune.mask_update_due(hp, step, last))
    for step, last, expected in [(4, 0, False), (9, 0, False), (10, 0, True),
                                 (19, 10, False), (20, 10, True), (40, 30, True),
                                 (41, 30, False)]:
        # Python ints are decided on the host, tensors in the graph.
        assert tf_prune.mask_update_due(hp, step, last) is expected
        assert bool(due(tf.constant(step, tf.int64), tf.constant(last))) is expected
        assert bool(tf_prune.mask_update_due(hp, tf.constant(step),
                                             last)) is expected
    forever = tf_prune.get_pruning_hparams().parse('pruning_frequency=3')
    assert bool(tf_prune.mask_update_due(forever, 10**9, 10**9 - 3))


def _replay(hp, layers, weights, steps):
    """The reference wiring with the public functions: at each step (already
    incremented) the conditional update of every weight."""
    thresholds = {layer: 0.0 for layer in layers}
    masks = {layer: np.ones_like(weights[layer]) for layer in layers}
    last_update = 0
    for step in steps:
        if tf_prune.mask_update_due(hp, step, last_update):
            for layer in layers:
                name = f'{layer}/kernel'
                thresholds[layer], mask = tf_prune.update_mask(
                    weights[layer], tf_prune.weight_sparsity(hp, name, step),
                    thresholds[layer], threshold_decay=hp.threshold_decay,
                    block_dims=tf_prune.block_dims(hp, name),
                    block_pooling_function=hp.block_pooling_function)
                masks[layer] = mask.numpy()
            last_update = step
        yield step, last_update, masks, thresholds


@pytest.mark.parametrize('case', load_golden('gating.json'), ids=lambda c: c['spec'])
def test_golden_gating_trace(case):
    hp = tf_prune.get_pruning_hparams().parse(case['spec'])
    weights = {case['layer']: np.array(case['weights'], np.float32).reshape(
        case['shape'])}
    trace = case['trace']
    replay = _replay(hp, [case['layer']], weights, [t['step'] for t in trace])
    for expected, (step, last_update, masks, thresholds) in zip(trace, replay):
        assert last_update == expected['last_update_step'], step
        assert int(masks[case['layer']].sum()) == expected['nnz'], step
        assert float(thresholds[case['layer']]) == pytest.approx(
            expected['threshold'], rel=1e-6), step


@pytest.mark.parametrize('case', load_golden('weight_map.json'),
                         ids=lambda c: c['spec'])
def test_golden_weight_map_trace(case):
    hp = tf_prune.get_pruning_hparams().parse(case['spec'])
    layers = case['layers']
    weights = {layer: np.array(case['weights'][layer], np.float32).reshape(
        case['shape']) for layer in layers}
    trace = case['trace']
    replay = _replay(hp, layers, weights, [t['step'] for t in trace])
    for expected, (step, _, masks, thresholds) in zip(trace, replay):
        sparsity = [1.0 - masks[layer].mean() for layer in layers]
        np.testing.assert_allclose(sparsity, expected['mask_sparsity'],
                                   atol=1e-6, err_msg=f'step {step}')
        np.testing.assert_allclose([float(thresholds[layer]) for layer in layers],
                                   expected['thresholds'], rtol=1e-6,
                                   err_msg=f'step {step}')


def test_the_schedule_functions_take_a_spec_string():
    spec = ('target_sparsity=0.9,sparsity_function_end_step=100,'
            'weight_sparsity_map=[conv2:0.45],block_dims_map=[fc:1x4],'
            'begin_pruning_step=10')
    hparams = tf_prune.get_pruning_hparams().parse(spec)
    assert float(tf_prune.compute_sparsity(spec, 50)) == float(
        tf_prune.compute_sparsity(hparams, 50))
    assert float(tf_prune.weight_sparsity(spec, 'conv2/kernel', 50)) == float(
        tf_prune.weight_sparsity(hparams, 'conv2/kernel', 50))
    assert tf_prune.block_dims(spec, 'fc/kernel') == [1, 4]
    assert tf_prune.mask_update_due(spec, 9, 0) is False
    assert tf_prune.mask_update_due(spec, 10, 0) is True
    with pytest.raises(ValueError, match='target_sparsity'):
        tf_prune.compute_sparsity('target_sparsity=1.5', 0)


# Steps within int32 (issue 16): no overflow, and one answer on host and graph.

_INT32_MAX = 2**31 - 1


def test_huge_steps_are_a_value_error_not_an_overflow():
    with pytest.raises(ValueError, match='sparsity_function_end_step must be'):
        tf_prune.compute_sparsity(f"sparsity_function_end_step={'9' * 400}", 0)
    with pytest.raises(ValueError, match='end_pruning_step must be -1'):
        tf_prune.mask_update_due('end_pruning_step=4294967396', 200, 0)


def test_gate_near_the_int32_end_does_not_wrap():
    # In int32, last + frequency wraps negative and the gate opens at once.
    hp = tf_prune.get_pruning_hparams().parse('pruning_frequency=10')
    last, step = _INT32_MAX - 5, _INT32_MAX
    assert tf_prune.mask_update_due(hp, step, last) is False
    assert not bool(tf_prune.mask_update_due(
        hp, tf.constant(step), tf.constant(last)))


def test_schedule_at_the_int32_ends():
    hp = tf_prune.get_pruning_hparams().parse(
        f'sparsity_function_begin_step={_INT32_MAX - 100},'
        f'sparsity_function_end_step={_INT32_MAX},initial_sparsity=0.25')
    assert float(tf_prune.compute_sparsity(hp, 0)) == 0.25
    assert float(tf_prune.compute_sparsity(hp, _INT32_MAX)) == 0.5


def _step():
    """Steps anywhere in int32, often near its ends, sometimes beyond."""
    return st.one_of(st.integers(0, 300), st.integers(_INT32_MAX - 300, _INT32_MAX),
                     st.integers(0, _INT32_MAX), st.integers(-2**40, 2**40))


def _step_hparam():
    return st.one_of(st.integers(0, 300), st.integers(_INT32_MAX - 300, _INT32_MAX),
                     st.integers(0, _INT32_MAX))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(begin=_step_hparam(), end=st.one_of(st.just(-1), _step_hparam()),
       frequency=_step_hparam(), step=_step(), last=_step())
def test_host_and_tensor_gates_agree(begin, end, frequency, step, last):
    hp = tf_prune.get_pruning_hparams()
    hp.begin_pruning_step, hp.end_pruning_step = begin, end
    hp.pruning_frequency = frequency
    try:
        hp.validate()
    except ValueError:
        assume(False)
    on_host = tf_prune.mask_update_due(hp, step, last)
    in_graph = tf_prune.mask_update_due(
        hp, tf.constant(step, tf.int64), tf.constant(last, tf.int64))
    assert on_host is bool(in_graph)
