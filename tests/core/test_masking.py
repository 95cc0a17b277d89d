"""update_mask: contrib's golden masks, identity with a top_k reference, paths."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import tf_prune
from tests.conftest import load_golden
from tests.helpers.n_of_m import group_counts
from tests.helpers.n_of_m import reference_mask
from tf_prune.core import masking


def _reference(weights, sparsity, threshold=0.0, decay=0.0):
    """contrib r1.15 for the element-wise path, with a full sort (top_k).

    The arithmetic is TensorFlow's, as in contrib: its kernels flush
    denormals to zero (a denormal threshold times 1 - decay becomes 0).
    """
    magnitudes = tf.abs(tf.cast(weights, tf.float32))
    n = int(tf.size(magnitudes))
    k = int(np.round(np.float32(n) * (np.float32(1) - np.float32(sparsity))))
    k = min(max(k, 1), n)
    current = tf.math.top_k(tf.reshape(magnitudes, [-1]), k=n).values[k - 1]
    smoothed = (current * np.float32(1 - decay)
                + np.float32(threshold) * np.float32(decay))
    return smoothed.numpy(), tf.cast(magnitudes >= smoothed, tf.float32).numpy()


def _assert_matches_reference(weights, sparsity, **kwargs):
    threshold, mask = tf_prune.update_mask(tf.constant(weights), sparsity, **kwargs)
    expected_threshold, expected_mask = _reference(weights, sparsity)
    assert float(threshold) == float(expected_threshold)
    np.testing.assert_array_equal(mask.numpy(), expected_mask)


@pytest.mark.parametrize('case', load_golden('masks.json'),
                         ids=lambda c: f"{c['shape']}-{c['block']}-{c['sparsity']:.3f}")
def test_golden_masks(case):
    weights = np.array(case['weights'], np.float32).reshape(case['shape'])
    threshold, mask = tf_prune.update_mask(
        weights, np.float32(case['sparsity']), np.float32(case['old_threshold']),
        threshold_decay=case['threshold_decay'], block_dims=case['block'],
        block_pooling_function=case['pooling'])
    assert threshold.dtype == tf.float32 and threshold.shape == ()
    assert float(threshold) == pytest.approx(case['threshold'], rel=1e-6, abs=0)
    assert mask.shape == tuple(case['shape']) and mask.dtype == tf.float32
    assert mask.numpy().ravel().astype(int).tolist() == case['mask']


@pytest.mark.parametrize('case', load_golden('histogram_r113.json'),
                         ids=lambda c: f"{c['shape']}-{c['nbins']}-{c['sparsity']:.3f}")
def test_golden_histogram_r113(case):
    weights = np.array(case['weights'], np.float32).reshape(case['shape'])
    threshold, mask = tf_prune.update_mask(
        weights, np.float32(case['sparsity']), method='histogram',
        nbins=case['nbins'])
    assert float(threshold) == pytest.approx(case['threshold'], rel=1e-6, abs=0)
    assert mask.numpy().ravel().astype(int).tolist() == case['mask']


def test_contrib_suite_linspace_095_keeps_five():
    _, mask = tf_prune.update_mask(np.linspace(1, 100, 100, dtype=np.float32), 0.95)
    assert int(mask.numpy().sum()) == 5


def test_ties_are_kept():
    _, mask = tf_prune.update_mask(tf.ones([10]), 0.5)
    assert int(mask.numpy().sum()) == 10


def test_k_zero_keeps_the_single_largest():
    # contrib crashed here (indices = -1 is not in [0, 10)).
    weights = np.arange(1, 11, dtype=np.float32)
    threshold, mask = tf_prune.update_mask(weights, 0.99)
    assert float(threshold) == 10.0
    assert mask.numpy().tolist() == [0] * 9 + [1]


@pytest.mark.parametrize('block, pooling, weights', [
    ([2, 2], 'AVG', [[.1, .1, .2, .2], [.1, .1, .2, .2], [.3, .3, .4, .4], [.3, .3, .4, .4]]),
    ([2, 2], 'MAX', [[.1, 0, .2, 0], [0, -.1, 0, -.2], [.3, 0, .4, 0], [0, -.3, 0, -.4]]),
    ([1, -1], 'AVG', [[.1] * 4, [.2] * 4, [.3] * 4, [.3, .3, .4, .4]]),
    ([1, -1], 'MAX', [[.1, 0, .1, 0], [0, .1, 0, .2], [.3, 0, .3, 0], [0, -.3, 0, .4]]),
])
@pytest.mark.parametrize('leading_dim', [False, True])
def test_contrib_suite_block_masks(block, pooling, weights, leading_dim):
    weights = np.array(weights, np.float32)
    if leading_dim:
        weights = weights[np.newaxis]
    _, mask = tf_prune.update_mask(weights, 0.5, block_dims=block,
                                   block_pooling_function=pooling)
    expected = np.array([[0] * 4, [0] * 4, [1] * 4, [1] * 4], np.float32)
    assert mask.shape == weights.shape
    np.testing.assert_array_equal(mask.numpy().reshape(4, 4), expected)


def test_minus_one_block_dim_is_resolved_per_weight():
    # contrib resolved -1 against the first weight and reused it.
    for rows in (4, 6):
        weights = np.tile(np.arange(1, rows + 1, dtype=np.float32)[:, None], [1, 3])
        _, mask = tf_prune.update_mask(weights.T, 0.5, block_dims=[-1, 1])
        # Each column of weights.T is a whole block: half the columns stay.
        assert mask.numpy().sum(axis=0).tolist() == (
            [0] * (rows // 2) + [3] * (rows // 2))


def test_contrib_suite_per_weight_blocks():
    _, mask1 = tf_prune.update_mask([[-.1, .1], [-.2, .2]], 0.5, block_dims=[1, 1])
    _, mask2 = tf_prune.update_mask([[.1, .1, .3, .3], [.2, .2, .4, .4]], 0.5,
                                    block_dims=[1, 2])
    assert mask1.numpy().tolist() == [[0, 0], [1, 1]]
    assert mask2.numpy().tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]


_RNG = np.random.default_rng(7)
# Sizes cover plain TF kernels (small) and XLA-fused ones (>= 65536 elements).
_TENSORS = {
    'normal': _RNG.standard_normal([3, 3, 64, 32]),
    'normal-large': _RNG.standard_normal([512, 1024]),
    'tie-heavy': _RNG.integers(-4, 5, [300, 300]).astype(float) * 0.25,
    'tie-heavy-large': _RNG.integers(-2, 3, [1 << 18]).astype(float),
    'all-equal': np.full([1 << 17], 0.3),
    'all-zero': np.zeros([257, 3]),
    'tiny-and-huge': np.concatenate([_RNG.uniform(0, 1e-30, 1 << 17),
                                     _RNG.uniform(1e30, 2e30, 1 << 17)]),
    # Every fourth entry large: the k-th value at sparsity 0.5 sits among
    # the small ones, all in a few buckets.
    'strided-structure': np.where(np.arange(1 << 18) % 4 == 0, 1000.0,
                                  _RNG.uniform(0, 1, 1 << 18)),
}


@pytest.mark.parametrize('name', list(_TENSORS))
@pytest.mark.parametrize('sparsity', [0.0, 0.3, 0.5, 0.9, 0.999])
def test_identical_to_top_k_reference(name, sparsity):
    _assert_matches_reference(_TENSORS[name].astype(np.float32), sparsity)


# The large shape's element-wise passes are XLA-fused kernels of their own.
# The whole update under XLA (jit_compile=True) compiles for minutes on a
# loaded CPU: the controller's use_tpu test and test_xla_block_and_histogram_paths
# compile it for small weights.
@pytest.mark.slow
@pytest.mark.parametrize('shape,jit_compile', [
    ([40, 25], False), ([600, 300], False)])
def test_tf_function_and_xla_give_the_eager_result(shape, jit_compile):
    weights = tf.constant(_RNG.standard_normal(shape).astype(np.float32))
    compiled = tf.function(
        lambda w, s, t: tf_prune.update_mask(w, s, t, threshold_decay=0.25),
        jit_compile=jit_compile)
    for sparsity in (0.5, 0.9):
        eager = tf_prune.update_mask(weights, sparsity, 0.4, threshold_decay=0.25)
        result = compiled(weights, tf.constant(sparsity), tf.constant(0.4))
        assert float(result[0]) == pytest.approx(float(eager[0]), rel=1e-6)
        np.testing.assert_array_equal(result[1].numpy(), eager[1].numpy())


def test_xla_block_and_histogram_paths():
    weights = tf.constant(_RNG.standard_normal([48, 64]).astype(np.float32))
    for kwargs in [dict(block_dims=(2, 4), block_pooling_function='MAX'),
                   dict(method='histogram', nbins=128)]:
        compiled = tf.function(lambda w, kw=kwargs: tf_prune.update_mask(w, 0.7, **kw),
                               jit_compile=True)
        eager = tf_prune.update_mask(weights, 0.7, **kwargs)
        result = compiled(weights)
        assert float(result[0]) == pytest.approx(float(eager[0]), rel=1e-6)
        np.testing.assert_array_equal(result[1].numpy(), eager[1].numpy())


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16])
def test_half_precision_weights(dtype):
    weights = tf.cast(tf.constant(_RNG.standard_normal([70, 90])), dtype)
    threshold, mask = tf_prune.update_mask(weights, 0.8)
    # The threshold is float32; it equals the float32 result on the same
    # values, which float32 represents exactly.
    expected_threshold, expected_mask = _reference(tf.cast(weights, tf.float32), 0.8)
    assert threshold.dtype == tf.float32 and mask.dtype == dtype
    assert float(threshold) == float(expected_threshold)
    np.testing.assert_array_equal(tf.cast(mask, tf.float32).numpy(), expected_mask)


def test_float64_weights_keep_float64_precision():
    weights = np.array([1.0, 1.0 + 1e-12, 2.0, 3.0])
    threshold, mask = tf_prune.update_mask(weights, 0.5)
    assert threshold.dtype == tf.float64 and mask.dtype == tf.float64
    assert float(threshold) == 2.0
    assert mask.numpy().tolist() == [0, 0, 1, 1]


def test_non_float_weights_raise_type_error():
    with pytest.raises(TypeError, match='got dtype int32'):
        tf_prune.update_mask(tf.constant([1, 2, 3]), 0.5)


@pytest.mark.parametrize('kwargs, message', [
    (dict(block_pooling_function='MIN'), 'Unknown pooling function'),
    (dict(threshold_decay=1.0), r'threshold_decay must be in range \[0,1\)'),
    (dict(block_dims=(0, 2)), 'block_dims must be a positive block size or -1'),
    (dict(block_dims=(2,)), r'block_dims must be \(height, width\)'),
    (dict(method='median'), "method must be one of exact, histogram, got 'median'"),
    (dict(method='histogram', nbins=0), 'nbins must be >= 1'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tf_prune.update_mask(tf.ones([4, 4]), 0.5, **kwargs)


@pytest.mark.parametrize('method', ['exact', 'histogram'])
def test_empty_weight(method):
    threshold, mask = tf_prune.update_mask(tf.zeros([0, 3]), 0.5, method=method)
    assert float(threshold) == 0.0 and mask.shape == (0, 3)


def test_block_pruning_needs_a_static_shape():
    dynamic = tf.function(
        lambda w: tf_prune.update_mask(w, 0.5, block_dims=(2, 2)),
        input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    with pytest.raises(ValueError, match='Block pruning needs a static weight shape'):
        dynamic.get_concrete_function()


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
                  elements=st.floats(-1e6, 1e6, width=32)),
       st.floats(0.0, float(np.float32(0.999)), width=32))
def test_mask_properties(weights, sparsity):
    threshold, mask = tf_prune.update_mask(weights, sparsity)
    mask = mask.numpy()
    assert set(np.unique(mask)) <= {0.0, 1.0}
    kept, pruned = np.abs(weights[mask == 1]), np.abs(weights[mask == 0])
    if kept.size and pruned.size:
        assert kept.min() >= pruned.max()
    k = int(np.round(np.float32(weights.size) * (np.float32(1) - np.float32(sparsity))))
    assert mask.sum() >= max(k, 1)
    assert float(threshold) == float(_reference(weights, sparsity)[0])


def test_dynamic_shape_element_wise_path():
    dynamic = tf.function(lambda w: tf_prune.update_mask(w, 0.75),
                          input_signature=[tf.TensorSpec([None, 8], tf.float32)])
    weights = _RNG.standard_normal([50, 8]).astype(np.float32)
    threshold, mask = dynamic(weights)
    expected_threshold, expected_mask = _reference(weights, 0.75)
    assert float(threshold) == float(expected_threshold)
    np.testing.assert_array_equal(mask.numpy(), expected_mask)


# Bad sparsities and weights (issue 16).

_SPARSITY_MESSAGE = (r'update_mask sparsity must be in \[0, 1\] \(the fraction '
                     r'of zeros\) for weight a/kernel, got')


@pytest.mark.parametrize('sparsity', [
    float('nan'), float('inf'), -float('inf'), -0.1, 1.5, np.float32('nan'),
    np.float64(1.0000001), tf.constant(np.nan), tf.Variable(-0.5)])
def test_known_sparsity_outside_the_unit_interval_is_a_value_error(sparsity):
    with pytest.raises(ValueError, match=_SPARSITY_MESSAGE):
        tf_prune.update_mask(tf.ones([4, 4]), sparsity, name='a/kernel')


def test_graph_sparsity_outside_the_unit_interval_fails_the_update():
    update = tf.function(lambda s: tf_prune.update_mask(tf.ones([4, 4]), s,
                                                        name='a/kernel'))
    for sparsity in (np.nan, 1.5, -0.5):
        with pytest.raises(tf.errors.InvalidArgumentError, match=(
                _SPARSITY_MESSAGE + r'\] \[')):
            update(tf.constant(sparsity, tf.float32))
    assert int(update(tf.constant(1.0))[1].numpy().sum()) == 16  # ties kept


def test_sparsity_one_keeps_the_single_largest():
    _, mask = tf_prune.update_mask(np.arange(1, 11, dtype=np.float32), 1.0)
    assert mask.numpy().tolist() == [0] * 9 + [1]


@pytest.mark.parametrize('decay', [0.0, 0.5])
def test_histogram_on_an_all_zero_weight(decay):
    # TF 1.13's threshold is count / nbins * max|w| = 0; its mask keeps
    # |w| > threshold, so an all-zero weight is all pruned (its output is
    # unchanged: the weights are zero).
    threshold, mask = tf_prune.update_mask(
        tf.zeros([6, 5]), 0.5, 0.25, threshold_decay=decay, method='histogram')
    assert float(threshold) == np.float32(0.25) * np.float32(decay)
    assert mask.numpy().sum() == 0 and mask.shape == (6, 5)


@pytest.mark.parametrize('method', ['exact', 'histogram'])
@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize('dtype', [tf.float32, tf.float16, tf.float64])
def test_non_finite_weights_raise_naming_the_weight(method, bad, dtype):
    weights = tf.cast(tf.constant([[0.5, bad], [2.0, 1.0]]), dtype)
    message = ('weight conv1/kernel has NaN or Inf values; the mask update '
               'cannot rank them')
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        tf_prune.update_mask(weights, 0.5, method=method, name='conv1/kernel')
    in_graph = tf.function(lambda w: tf_prune.update_mask(
        w, 0.5, method=method, block_dims=(1, 2), name='conv1/kernel'))
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        in_graph(weights)


def _block_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if 'exceed weight' in r.getMessage()]


def test_blocks_larger_than_the_weight_are_clamped_with_one_warning(caplog):
    weights = tf.constant(_RNG.standard_normal([8, 16]).astype(np.float32))
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            _, mask = tf_prune.update_mask(weights, 0.9, block_dims=(32, 32),
                                           name='fc/kernel')
            # One block, which k >= 1 keeps.
            assert mask.numpy().min() == 1
    assert _block_warnings(caplog) == [
        'Block dims 32x32 exceed weight fc/kernel of (squeezed) shape 8x16; '
        'clamped to 8x16, 1 block(s), of which a mask update keeps at least '
        'one: use blocks smaller than the weight to prune it']


@pytest.mark.parametrize('pooling', ['AVG', 'MAX'])
def test_a_clamped_block_masks_as_the_block_it_is_clamped_to(pooling):
    weights = _RNG.standard_normal([1, 8, 40]).astype(np.float32)
    huge = tf_prune.update_mask(weights, 0.5, block_dims=(2**40, 32),
                                block_pooling_function=pooling,
                                name='huge/kernel')
    clamped = tf_prune.update_mask(weights, 0.5, block_dims=(8, 32),
                                   block_pooling_function=pooling)
    assert float(huge[0]) == float(clamped[0])
    np.testing.assert_array_equal(huge[1].numpy(), clamped[1].numpy())


# N:M masks (nm_sparsity; update_mask's n_of_m).

_NM_SHAPES = [(8, 3), (10, 5), (6, 7, 2), (3, 3, 9, 4), (2, 2, 2, 13, 3)]


@pytest.mark.parametrize('shape', _NM_SHAPES, ids=str)
@pytest.mark.parametrize('n, m', [(2, 4), (1, 4), (3, 4), (1, 2), (3, 8)])
@pytest.mark.parametrize('tied', [False, True])
def test_n_of_m_mask_matches_the_numpy_reference(shape, n, m, tied):
    rng = np.random.default_rng(sum(shape) + 10 * n + m)
    weights = (rng.integers(-2, 3, shape) if tied
               else rng.standard_normal(shape)).astype(np.float32)
    mask = masking.n_of_m_mask(weights, n, m).numpy()
    assert mask.shape == shape and mask.dtype == np.float32
    np.testing.assert_array_equal(mask, reference_mask(weights, n, m))
    counts = group_counts(mask, m)
    length = shape[-2]
    full = length // m
    assert (counts[:, :full] == n).all()
    if length % m:  # the partial last group
        assert (counts[:, full] == min(n, length % m)).all()


def test_n_of_m_mask_of_a_dense_layer_by_hand():
    # Dense [in, out]: groups run down each column; the last group, of 3,
    # keeps 2 too, and of two equal zeros the upper one.
    weights = np.array([[1., -9.], [4., 2.], [-3., 0.], [2., 5.],
                        [0., 0.], [7., -1.], [3., 0.]], np.float32)
    mask = masking.n_of_m_mask(weights, 2, 4).numpy()
    assert mask.tolist() == [[0, 1], [1, 0], [1, 0], [0, 1],
                             [0, 1], [1, 1], [1, 0]]


def test_n_of_m_mask_longer_than_the_axis_is_one_group_per_row():
    weights = np.arange(1, 13, dtype=np.float32).reshape(4, 3)
    mask = masking.n_of_m_mask(weights, 2, 2**40).numpy()
    np.testing.assert_array_equal(mask, reference_mask(weights, 2, 10))
    assert mask.sum(axis=0).tolist() == [2, 2, 2]


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16, tf.float64])
def test_n_of_m_mask_keeps_the_weights_dtype(dtype):
    weights = tf.cast(_RNG.standard_normal([12, 4]), dtype)
    mask = masking.n_of_m_mask(weights, 2, 4)
    assert mask.dtype == dtype
    np.testing.assert_array_equal(
        tf.cast(mask, tf.float64).numpy(),
        reference_mask(tf.cast(weights, tf.float64).numpy(), 2, 4))


def test_n_of_m_mask_tells_float64_weights_apart():
    # Equal in float32; the larger is kept.
    weights = np.array([[1.0], [1.0 + 1e-12], [0.0], [0.0]])
    assert masking.n_of_m_mask(weights, 1, 4).numpy().ravel().tolist() == [
        0, 1, 0, 0]


def test_n_of_m_mask_in_tf_function_and_xla():
    weights = tf.constant(_RNG.standard_normal([3, 3, 10, 6]), tf.float32)
    eager = masking.n_of_m_mask(weights, 2, 4)
    for jit_compile in (False, True):
        compiled = tf.function(lambda w: masking.n_of_m_mask(w, 2, 4),
                               jit_compile=jit_compile)
        np.testing.assert_array_equal(compiled(weights).numpy(), eager.numpy())


@pytest.mark.parametrize('weights, message', [
    (tf.ones([8]), r'which weight fc/bias of shape \(8,\) lacks; prune only '
     r'weights of rank 2 or more'),
    (tf.ones([]), r'which weight fc/bias of shape \(\) lacks'),
])
def test_n_of_m_mask_needs_an_input_channel_axis(weights, message):
    with pytest.raises(ValueError, match=message):
        masking.n_of_m_mask(weights, 2, 4, name='fc/bias')


def test_n_of_m_mask_needs_a_static_shape():
    dynamic = tf.function(lambda w: masking.n_of_m_mask(w, 2, 4),
                          input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    with pytest.raises(ValueError, match=r'of shape \(None, 4\) lacks'):
        dynamic.get_concrete_function()


def test_update_mask_with_n_of_m_is_the_n_of_m_mask_and_keeps_the_threshold():
    weights = _RNG.standard_normal([3, 3, 8, 5]).astype(np.float32)
    expected = reference_mask(weights, 2, 4)
    for sparsity in (0.0, 0.9):  # not read
        threshold, mask = tf_prune.update_mask(weights, sparsity, 0.375,
                                               n_of_m=(2, 4))
        assert threshold.dtype == tf.float32 and float(threshold) == 0.375
        np.testing.assert_array_equal(mask.numpy(), expected)
    threshold, mask = tf_prune.update_mask(weights.astype(np.float64), 0.5,
                                           n_of_m=[2, 4])
    assert threshold.dtype == tf.float64 and float(threshold) == 0.0
    np.testing.assert_array_equal(mask.numpy(), expected)


@pytest.mark.parametrize('kwargs, message', [
    (dict(threshold_decay=0.5), r'\(2, 4\) keeps the n largest \|w\| of every '
     r'm, with no threshold, and cannot take threshold_decay=0.5; drop them'),
    (dict(block_dims=(1, 4)), r'cannot take block_dims=\(1, 4\); drop'),
    (dict(method='histogram'), "cannot take method='histogram'; drop"),
    (dict(block_dims=(2, 2), method='histogram'),
     r"cannot take block_dims=\(2, 2\), method='histogram'; drop them or "
     r'n_of_m$'),
])
def test_update_mask_n_of_m_refuses_threshold_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tf_prune.update_mask(tf.ones([8, 4]), 0.5, n_of_m=(2, 4), **kwargs)


@pytest.mark.parametrize('n_of_m, message', [
    ((4, 2), r'update_mask n_of_m keeps N of every M weights and needs '
     r'integers 1 <= N < M \(2:4 keeps 2 of 4\), got 4:2'),
    ((0, 4), 'got 0:4'),
    ((2.0, 4), 'got 2.0:4'),
    ((2,), r'n_of_m must be a pair \(n, m\), as \(2, 4\) .*; got \(2,\)'),
    ('2:4', "n_of_m must be a pair .*; got '2:4'"),
])
def test_update_mask_bad_n_of_m(n_of_m, message):
    with pytest.raises(ValueError, match=message):
        tf_prune.update_mask(tf.ones([8, 4]), 0.5, n_of_m=n_of_m)


def test_update_mask_n_of_m_refuses_non_finite_weights_naming_them():
    weights = np.ones([8, 4], np.float32)
    weights[3, 1] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match='weight fc/kernel has NaN or Inf values'):
        tf_prune.update_mask(weights, 0.5, n_of_m=(2, 4), name='fc/kernel')
