"""tf_prune.compat.v1.pruning against contrib's golden vectors, its fixed
defects, and the promise to change nothing global.

Each test builds its graph in `tf.Graph().as_default()`, TF 2's graph mode
inside an eager process; contrib's own suite runs in both TF1 modes
(test_contrib_suite.py).
"""

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import load_golden
from tests.helpers.n_of_m import reference_mask
from tf_prune.compat.v1 import pruning

v1 = tf.compat.v1


def _session_run(build):
    """Builds a graph with `build()`, initializes it, returns (session, out)."""
    graph = tf.Graph()
    with graph.as_default():
        v1.train.get_or_create_global_step()
        outputs = build()
        session = v1.Session(graph=graph)
        session.run(v1.global_variables_initializer())
    return session, outputs


def _step_setter():
    """A function setting the global step of the graph being built."""
    step = v1.placeholder(tf.int64, [])
    assign = v1.assign(v1.train.get_global_step(), step)
    return lambda session, value: session.run(assign, {step: value})


def _weight(name, values, shape):
    with v1.variable_scope(name):
        weight = v1.get_variable(
            'kernel', initializer=np.array(values, np.float32).reshape(shape))
        # In the weight's scope (`<name>/mask`); contrib's default scope ''
        # nests an empty one (`<name>//mask`), as TF1's variable_scope did.
        pruning.apply_mask(weight, v1.get_variable_scope())
    return weight


@pytest.mark.parametrize('case', load_golden('masks.json')[::3],
                         ids=lambda c: f"{c['shape']}-{c['block']}-{c['pooling']}")
def test_golden_masks_bit_for_bit(case):
    spec = (f"block_height={case['block'][0]},block_width={case['block'][1]},"
            f"block_pooling_function={case['pooling']},"
            f"threshold_decay={case['threshold_decay']}")

    def build():
        weights = tf.constant(np.array(case['weights'], np.float32)
                              .reshape(case['shape']))
        old = v1.Variable(np.float32(case['old_threshold']), name='threshold')
        p = pruning.Pruning(pruning.get_pruning_hparams().parse(spec),
                            sparsity=tf.constant(np.float32(case['sparsity'])))
        return p._maybe_update_block_mask(weights, old)

    session, (threshold, mask) = _session_run(build)
    threshold, mask = session.run([threshold, mask])
    assert np.float32(threshold) == np.float32(case['threshold'])
    np.testing.assert_array_equal(mask.reshape(-1), case['mask'])


@pytest.mark.parametrize('case', load_golden('gating.json'),
                         ids=lambda c: c['spec'])
def test_golden_gating_trace(case):
    def build():
        _weight(case['layer'], case['weights'], case['shape'])
        p = pruning.Pruning(case['spec'])
        return (p.conditional_mask_update_op(), p._last_update_step,
                _step_setter(), pruning.get_masks(), pruning.get_thresholds())

    session, (update, last_step, set_step, mask, threshold) = _session_run(
        build)
    for expected in case['trace']:
        set_step(session, expected['step'])
        session.run(update)
        assert session.run(last_step) == expected['last_update_step']
        assert int(session.run(mask[0]).sum()) == expected['nnz']
        assert session.run(threshold[0]) == pytest.approx(
            expected['threshold'], rel=1e-6)


@pytest.mark.parametrize('case', load_golden('weight_map.json'),
                         ids=lambda c: c['spec'])
def test_golden_weight_map_trace(case):
    def build():
        for layer in case['layers']:
            _weight(layer, case['weights'][layer], case['shape'])
        p = pruning.Pruning(case['spec'])
        return (p.conditional_mask_update_op(), pruning.get_weight_sparsity(),
                pruning.get_thresholds(), _step_setter())

    session, (update, sparsities, thresholds, set_step) = _session_run(build)
    for expected in case['trace']:
        set_step(session, expected['step'])
        session.run(update)
        np.testing.assert_allclose(session.run(sparsities),
                                   expected['mask_sparsity'], atol=1e-6)
        np.testing.assert_allclose(session.run(thresholds),
                                   expected['thresholds'], rtol=1e-6)


def test_summary_tags_are_contribs():
    golden = load_golden('summaries.json')

    def build():
        for layer in golden['layers']:
            _weight(layer, np.ones(6), (2, 3))
        pruning.Pruning(golden['spec']).add_pruning_summaries()
        return v1.get_collection(v1.GraphKeys.SUMMARIES)

    session, summaries = _session_run(build)
    tags = [v1.Summary.FromString(session.run(s)).value[0].tag
            for s in summaries]
    assert tags == golden['tags']


def test_k_zero_keeps_the_largest_weight():
    # contrib crashed: sparsity 0.99 of 10 weights rounds k to 0.
    def build():
        weight = _weight('layer', np.arange(1, 11), (10,))
        p = pruning.Pruning(sparsity=tf.constant(0.99))
        return p.mask_update_op(), pruning.get_masks()[0], weight

    session, (update, mask, _) = _session_run(build)
    session.run(update)
    np.testing.assert_array_equal(session.run(mask), [0] * 9 + [1])


def test_minus_one_block_dims_resolve_per_weight():
    # contrib resolved a -1 dim against the first weight and kept it.
    def build():
        _weight('narrow', np.arange(1, 9), (2, 4))
        _weight('wide', np.arange(1, 17), (2, 8))
        p = pruning.Pruning('block_height=1,block_width=-1',
                            sparsity=tf.constant(0.5))
        return p.mask_update_op(), pruning.get_masks()

    session, (update, masks) = _session_run(build)
    session.run(update)
    narrow, wide = session.run(masks)
    # Whole rows go: the row of larger values stays.
    np.testing.assert_array_equal(narrow, [[0] * 4, [1] * 4])
    np.testing.assert_array_equal(wide, [[0] * 8, [1] * 8])


def test_partitioned_masks_have_summaries():
    # contrib's add_pruning_summaries failed on a PartitionedVariable mask.
    def build():
        with v1.variable_scope(
                'layer', partitioner=v1.fixed_size_partitioner(2)):
            weight = v1.get_variable('weights', [4, 3])
            pruning.apply_mask(weight, v1.get_variable_scope())
        p = pruning.Pruning('name=p', sparsity=tf.constant(0.5))
        p.add_pruning_summaries()
        return p.mask_update_op(), v1.get_collection(v1.GraphKeys.SUMMARIES)

    session, (update, summaries) = _session_run(build)
    session.run(update)
    values = {v.tag: v.simple_value for s in summaries
              for v in v1.Summary.FromString(session.run(s)).value}
    assert values['p_summaries/layer/mask/sparsity'] == 0.5


def test_without_a_global_step_the_error_says_how_to_make_one():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match='get_or_create_global_step'):
            pruning.Pruning()


def test_gradient_prune_options_point_to_the_keras_api():
    with tf.Graph().as_default():
        weight = v1.get_variable('w', [2, 2])
        with pytest.raises(ValueError, match='tf_prune.prune'):
            pruning.apply_mask(weight, prune_option='first_order_gradient')


_NM_SPEC = 'name=nm,nm_sparsity=2:4,begin_pruning_step=2,pruning_frequency=2'


def test_nm_sparsity_sets_n_of_m_masks_at_gated_updates():
    rng = np.random.default_rng(4)
    values = {'conv': rng.standard_normal((3, 3, 6, 4)),
              'fc': rng.standard_normal((10, 3))}

    def build():
        for name, value in values.items():
            _weight(name, value, value.shape)
        # Partitioned along the input-channel axis: masked as one tensor.
        with v1.variable_scope(
                'split', partitioner=v1.fixed_size_partitioner(2)):
            split = v1.get_variable(
                'weights', [8, 3],
                initializer=v1.random_normal_initializer(seed=4))
            pruning.apply_mask(split, v1.get_variable_scope())
        p = pruning.Pruning(_NM_SPEC)
        masks = [tf.identity(mask) for mask in pruning.get_masks()[:2]]
        return (p.conditional_mask_update_op(), _step_setter(),
                masks + [pruning.get_masks()[2].as_tensor()],
                pruning.get_thresholds()[:2], pruning.get_weight_sparsity(),
                split.as_tensor())

    session, (update, set_step, masks, thresholds, sparsities, split) = (
        _session_run(build))
    set_step(session, 1)
    session.run(update)
    assert all(mask.min() == 1 for mask in session.run(masks))
    set_step(session, 2)
    session.run(update)
    weights = [*values.values(), session.run(split)]
    for mask, weight in zip(session.run(masks), weights):
        np.testing.assert_array_equal(mask, reference_mask(weight, 2, 4))
    assert session.run(thresholds) == [0.0, 0.0]
    # conv keeps 4 of its 6 input channels' weights, fc 6 of 10, split 4 of 8.
    np.testing.assert_allclose(session.run(sparsities), [1 / 3, 0.4, 0.5])


def test_nm_sparsity_names_a_weight_without_an_input_channel_axis():
    with tf.Graph().as_default():
        v1.train.get_or_create_global_step()
        _weight('fc', np.ones(8), (8,))
        p = pruning.Pruning(_NM_SPEC)
        with pytest.raises(ValueError, match=(
                r'which weight fc/kernel of shape \(8,\) lacks; prune only '
                r'weights of rank 2 or more')):
            p.mask_update_op()


def test_nm_sparsity_refuses_a_sparsity_override():
    with tf.Graph().as_default():
        v1.train.get_or_create_global_step()
        with pytest.raises(ValueError, match=(
                r'^Pruning argument sparsity replaces the sparsity schedule, '
                r'which nm_sparsity=2:4 does not use')):
            pruning.Pruning(_NM_SPEC, sparsity=tf.constant(0.5))


def test_importing_changes_no_global_setting():
    import tf_prune.compat.v1  # noqa: F401  (imported, then checked)
    assert tf.executing_eagerly()
    assert tf.compat.v1.control_flow_v2_enabled()
    assert tf.compat.v1.resource_variables_enabled()
