"""The Pruning controller: contrib's traces, overrides, options, compilation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tf_prune.keras.wrapper import find_wrappers
from tests.conftest import load_golden


def _dense_model(layers, shape, weights=None):
    """Dense layers (no bias) named `layers`, side by side on one input."""
    inputs = keras.Input((shape[0],))
    dense = [keras.layers.Dense(shape[1], use_bias=False, name=name)
             for name in layers]
    model = keras.Model(inputs, [layer(inputs) for layer in dense])
    for layer in dense:
        if weights is not None:
            layer.kernel.assign(np.array(weights[layer.name], np.float32)
                                .reshape(shape))
    return model


@pytest.mark.parametrize('in_function', [False, True],
                         ids=['gate on the host', 'gate in the graph'])
@pytest.mark.parametrize('case', load_golden('gating.json'), ids=lambda c: c['spec'])
def test_golden_gating_trace_through_the_controller(case, in_function):
    layer = case['layer']
    model = tf_prune.prune(_dense_model([layer], case['shape'],
                                        {layer: case['weights']}))
    pruning = tf_prune.Pruning(case['spec'], model)
    assert pruning.get_weight_names() == [case['weight_name']]
    update = pruning.conditional_mask_update
    if in_function:
        update = tf.function(update)
    for expected in case['trace']:
        update(tf.constant(expected['step']))
        step = expected['step']
        assert int(pruning.last_mask_update_step.numpy()) == \
            expected['last_update_step'], step
        assert int(np.sum(pruning.get_masks()[0].numpy())) == expected['nnz'], step
        assert float(pruning.get_thresholds()[0].numpy()) == pytest.approx(
            expected['threshold'], rel=1e-6), step


@pytest.mark.parametrize('case', load_golden('weight_map.json'),
                         ids=lambda c: c['spec'])
def test_golden_weight_map_trace_through_the_controller(case):
    model = tf_prune.prune(_dense_model(case['layers'], case['shape'],
                                        case['weights']))
    pruning = tf_prune.Pruning(case['spec'], model)
    for expected in case['trace']:
        pruning.conditional_mask_update(tf.constant(expected['step']))
        np.testing.assert_allclose(
            [float(s) for s in pruning.get_weight_sparsity()],
            expected['mask_sparsity'], atol=1e-6, err_msg=str(expected['step']))
        np.testing.assert_allclose(
            [float(t.numpy()) for t in pruning.get_thresholds()],
            expected['thresholds'], rtol=1e-6, err_msg=str(expected['step']))


def test_every_wrapper_tracks_the_last_update_step():
    model = tf_prune.prune(_dense_model(['a', 'b'], (4, 4)))
    pruning = tf_prune.Pruning('pruning_frequency=5', model)
    assert not bool(pruning.conditional_mask_update(4))
    assert bool(pruning.conditional_mask_update(5))
    assert [int(w.last_mask_update_step.numpy())
            for w in find_wrappers(model)] == [5, 5]
    pruning.mask_update(7)
    assert int(pruning.last_mask_update_step.numpy()) == 7


def test_one_trace_serves_every_step():
    model = tf_prune.prune(_dense_model(['a'], (8, 8)))
    pruning = tf_prune.Pruning('pruning_frequency=2', model)
    step = tf.Variable(0, dtype=tf.int64)
    for value in range(1, 12):
        step.assign(value)
        pruning.conditional_mask_update(step)
        pruning.conditional_mask_update(value)
    (fn,) = pruning._conditional_fns.values()
    assert fn.experimental_get_tracing_count() == 1


def test_hparams_are_validated_with_contribs_messages():
    model = tf_prune.prune(_dense_model(['a'], (4, 4)))
    with pytest.raises(ValueError, match='Pruning must begin before it can end'):
        tf_prune.Pruning('begin_pruning_step=10,end_pruning_step=5', model)
    with pytest.raises(ValueError, match='Sparsity function requires'):
        tf_prune.Pruning('sparsity_function_begin_step=100', model)


def test_a_model_without_wrappers_is_refused():
    with pytest.raises(ValueError, match=r'tf_prune.prune\(model, hparams\)'):
        tf_prune.Pruning('', _dense_model(['a'], (4, 4)))


def test_sparsity_override_variable_and_callable():
    model = tf_prune.prune(_dense_model(['a', 'b'], (10, 10)))
    spec = 'target_sparsity=0.5,weight_sparsity_map=[b:0.25]'
    sparsity = tf.Variable(0.2)
    pruning = tf_prune.Pruning(spec, model, sparsity=sparsity)
    pruning.mask_update(1)
    # `b` is scaled by 0.25 / 0.5 as contrib scaled its own override.
    assert [float(s) for s in pruning.get_weight_sparsity()] == pytest.approx(
        [0.2, 0.1])
    sparsity.assign(0.6)
    pruning.mask_update(2)
    assert [float(s) for s in pruning.get_weight_sparsity()] == pytest.approx(
        [0.6, 0.3])
    by_step = tf_prune.Pruning(spec, model,
                               sparsity=lambda step: tf.cast(step, tf.float32) / 10)
    by_step.mask_update(4)
    assert [float(s) for s in by_step.get_weight_sparsity()] == pytest.approx(
        [0.4, 0.2])


def test_block_sparsity_through_the_controller():
    model = tf_prune.prune(_dense_model(['fc'], (8, 8)))
    pruning = tf_prune.Pruning('block_height=2,block_width=4,target_sparsity=0.5',
                               model)
    pruning.mask_update(100)
    mask = pruning.get_masks()[0].numpy()
    blocks = mask.reshape(4, 2, 2, 4).transpose(0, 2, 1, 3).reshape(8, 8)
    assert all(len(set(row)) == 1 for row in blocks)
    assert mask.mean() == 0.5


@pytest.mark.slow
def test_use_tpu_compiles_the_update_with_xla_and_agrees():
    weights = {'a': np.random.default_rng(3).normal(size=(6, 8))}
    spec = 'target_sparsity=0.7,threshold_decay=0.5,pruning_frequency=1'
    masks = []
    for use_tpu in (False, True):
        model = tf_prune.prune(_dense_model(['a'], (6, 8), weights))
        pruning = tf_prune.Pruning(f'{spec},use_tpu={use_tpu}', model)
        for step in (1, 50, 100):
            pruning.conditional_mask_update(step)
        masks.append((pruning.get_masks()[0].numpy(),
                       float(pruning.get_thresholds()[0].numpy())))
        update = pruning._update_masks_fn.get_concrete_function(
            tf.TensorSpec([], tf.int64))
        assert update.function_def.attr['_XlaMustCompile'].b is use_tpu
    np.testing.assert_array_equal(masks[0][0], masks[1][0])
    assert masks[0][1] == masks[1][1]


def _replay_gradient_option(option, snapshots, decay, sparsity):
    """The documented scoring, in numpy: |w| times the change estimate."""
    weight = snapshots[0]
    old, old_old = weight, weight
    gradient = np.zeros_like(weight)
    for weight in snapshots[1:]:
        change = (weight - old if option == 'first_order_gradient'
                  else weight - 2 * old + old_old)
        norm = np.linalg.norm(change)
        change = change / norm if norm > 0 else change
        gradient = decay * gradient + (1 - decay) * change
        old_old, old = old, weight
    factor = weight if option == 'first_order_gradient' else weight * weight
    scores = np.abs(factor * gradient).ravel()
    k = int(np.round(scores.size * (1 - sparsity)))
    return (scores >= np.sort(scores)[::-1][k - 1]).reshape(weight.shape)


@pytest.mark.parametrize('option', ['first_order_gradient',
                                    'second_order_gradient'])
def test_gradient_prune_options_score_by_weight_change(option):
    rng = np.random.default_rng(4)
    snapshots = [rng.normal(size=(6, 8)).astype(np.float32)]
    for _ in range(4):
        snapshots.append(snapshots[-1] + rng.normal(
            scale=0.1, size=(6, 8)).astype(np.float32))
    spec = (f'prune_option={option},gradient_decay_rate=0.5,'
            f'target_sparsity=0.5,pruning_frequency=1000')
    model = tf_prune.prune(_dense_model(['a'], (6, 8), {'a': snapshots[0]}),
                           spec)
    wrapper = model.get_layer('a')
    assert [v.path for v in wrapper.weights if 'weight' in v.path or
            'gradient' in v.path] == ['a/gradient', 'a/old_weight',
                                      'a/old_old_weight']
    pruning = tf_prune.Pruning(spec, model)
    for step, weights in enumerate(snapshots[1:], start=1):
        wrapper.layer.kernel.assign(weights)
        pruning.conditional_mask_update(step)  # tracks the change, no update
    pruning.mask_update(1000)
    expected = _replay_gradient_option(option, snapshots, 0.5, 0.5)
    np.testing.assert_array_equal(pruning.get_masks()[0].numpy(), expected)
    by_magnitude = np.abs(snapshots[-1]) >= np.median(np.abs(snapshots[-1]))
    assert not np.array_equal(expected, by_magnitude)


# Bad overrides and weights (issue 16).

_OVERRIDE_MESSAGE = (r'Pruning argument sparsity must be in \[0, 1\) \(the '
                     r'global target sparsity\), got')


@pytest.mark.parametrize('sparsity', [
    float('nan'), float('inf'), 1.0, -0.1, np.float32(1.5),
    tf.Variable(float('nan')), keras.Variable(2.0)])
def test_sparsity_override_outside_the_unit_interval_is_a_value_error(sparsity):
    model = tf_prune.prune(_dense_model(['a'], (4, 4)))
    with pytest.raises(ValueError, match=_OVERRIDE_MESSAGE):
        tf_prune.Pruning('', model, sparsity=sparsity)


def _state(pruning):
    return (int(pruning.last_mask_update_step.numpy()),
            [m.numpy().tolist() for m in pruning.get_masks()],
            [float(t.numpy()) for t in pruning.get_thresholds()])


@pytest.mark.parametrize('read', ['variable', 'callable'])
def test_override_read_out_of_range_fails_the_update_and_changes_nothing(read):
    model = tf_prune.prune(_dense_model(['a', 'b'], (4, 4)))
    variable = tf.Variable(0.5)
    sparsity = variable if read == 'variable' else (lambda step: variable * 1)
    pruning = tf_prune.Pruning('pruning_frequency=1', model, sparsity=sparsity)
    before = _state(pruning)
    variable.assign(1.0)
    for update in (pruning.mask_update, pruning.conditional_mask_update):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=_OVERRIDE_MESSAGE + r'\] \[1\]'):
            update(5)
        assert _state(pruning) == before
    with pytest.raises(ValueError, match=_OVERRIDE_MESSAGE + ' 1.0'):
        pruning.get_target_sparsities(5)  # eager: read and checked now


def test_override_scaled_above_one_fails_the_update_naming_the_weight():
    model = tf_prune.prune(_dense_model(['a'], (4, 4)))
    pruning = tf_prune.Pruning(
        'target_sparsity=0.5,weight_sparsity_map=[a:0.9]', model, sparsity=0.9)
    with pytest.raises(tf.errors.InvalidArgumentError, match=(
            r'update_mask sparsity must be in \[0, 1\] .* for weight a/kernel')):
        pruning.mask_update(1)


@pytest.mark.parametrize('use_tpu', [False, True])
def test_a_nan_weight_fails_the_update_naming_it_and_changes_nothing(use_tpu):
    # With use_tpu the checks run before the XLA call, which would drop
    # them; the XLA update itself is never compiled here.
    model = tf_prune.prune(_dense_model(['a', 'b'], (4, 4)))
    kernel = model.get_layer('b').layer.kernel
    kernel.assign(np.where(np.eye(4), np.nan, kernel.numpy()))
    pruning = tf_prune.Pruning(f'pruning_frequency=1,use_tpu={use_tpu}', model)
    before = _state(pruning)
    message = 'weight b/kernel has NaN or Inf values; the mask update cannot'
    for update in (pruning.mask_update, pruning.conditional_mask_update,
                   tf.function(pruning.conditional_mask_update)):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            update(tf.constant(5))
        assert _state(pruning) == before
