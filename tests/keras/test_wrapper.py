"""PruneWrapper: every layer kind pruned in a short fit, masked forward, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tf_prune.keras.wrapper import prunable_weights

SPEC = ('target_sparsity=0.5,pruning_frequency=1,begin_pruning_step=0,'
        'sparsity_function_end_step=3')
RNG = np.random.default_rng(0)


def _inputs(shape, dtype='float32'):
    return keras.Input(shape, dtype=dtype)


def _one_layer_model(layer, shape, dtype='float32', two_inputs=False):
    x = _inputs(shape, dtype)
    y = layer(x, x) if two_inputs else layer(x)
    return keras.Model(x, y)


# (id, layer factory, input shape, input dtype, called with (x, x), names of
# its pruned weights)
LAYER_KINDS = [
    ('dense', lambda: keras.layers.Dense(8, name='fc'), (6,), 'float32', False,
     ['fc/kernel']),
    ('einsum_dense', lambda: keras.layers.EinsumDense(
        'ab,bc->ac', output_shape=8, bias_axes='c', name='ein'), (6,),
     'float32', False, ['ein/kernel']),
    ('conv1d', lambda: keras.layers.Conv1D(4, 3, name='c1'), (10, 3),
     'float32', False, ['c1/kernel']),
    ('conv2d', lambda: keras.layers.Conv2D(4, 3, name='c2'), (8, 8, 2),
     'float32', False, ['c2/kernel']),
    ('conv3d', lambda: keras.layers.Conv3D(3, 2, name='c3'), (4, 4, 4, 2),
     'float32', False, ['c3/kernel']),
    ('conv1d_transpose', lambda: keras.layers.Conv1DTranspose(
        4, 3, name='t1'), (6, 3), 'float32', False, ['t1/kernel']),
    ('conv2d_transpose', lambda: keras.layers.Conv2DTranspose(
        4, 3, name='t2'), (5, 5, 2), 'float32', False, ['t2/kernel']),
    ('conv3d_transpose', lambda: keras.layers.Conv3DTranspose(
        3, 2, name='t3'), (3, 3, 3, 2), 'float32', False, ['t3/kernel']),
    ('depthwise_conv2d', lambda: keras.layers.DepthwiseConv2D(
        3, depth_multiplier=2, name='dw'), (8, 8, 3), 'float32', False,
     ['dw/kernel']),
    ('separable_conv1d', lambda: keras.layers.SeparableConv1D(
        4, 3, name='s1'), (10, 3), 'float32', False,
     ['s1/depthwise_kernel', 's1/pointwise_kernel']),
    ('separable_conv2d', lambda: keras.layers.SeparableConv2D(
        4, 3, depth_multiplier=2, name='s2'), (8, 8, 3), 'float32', False,
     ['s2/depthwise_kernel', 's2/pointwise_kernel']),
    ('embedding', lambda: keras.layers.Embedding(20, 8, name='emb'), (5,),
     'int32', False, ['emb/embeddings']),
    ('simple_rnn', lambda: keras.layers.SimpleRNN(6, name='rnn'), (5, 4),
     'float32', False, ['rnn/kernel', 'rnn/recurrent_kernel']),
    ('gru', lambda: keras.layers.GRU(6, name='gru'), (5, 4), 'float32',
     False, ['gru/kernel', 'gru/recurrent_kernel']),
    ('lstm', lambda: keras.layers.LSTM(6, name='lstm'), (5, 4), 'float32',
     False, ['lstm/kernel', 'lstm/recurrent_kernel']),
    ('rnn_cell', lambda: keras.layers.RNN(keras.layers.LSTMCell(5),
                                          name='cell_rnn'), (5, 4),
     'float32', False, ['cell_rnn/kernel', 'cell_rnn/recurrent_kernel']),
    ('bidirectional', lambda: keras.layers.Bidirectional(
        keras.layers.LSTM(4, name='lstm'), name='bi'), (5, 4), 'float32',
     False, ['bi/forward_lstm/kernel', 'bi/forward_lstm/recurrent_kernel',
             'bi/backward_lstm/kernel', 'bi/backward_lstm/recurrent_kernel']),
    ('multi_head_attention', lambda: keras.layers.MultiHeadAttention(
        2, 4, name='mha'), (5, 8), 'float32', True,
     ['mha/query/kernel', 'mha/key/kernel', 'mha/value/kernel',
      'mha/attention_output/kernel']),
    ('time_distributed', lambda: keras.layers.TimeDistributed(
        keras.layers.Dense(4, name='inner'), name='td'), (5, 6), 'float32',
     False, ['td/kernel']),
]


def _data(shape, dtype, n=64):
    if dtype == 'int32':
        return RNG.integers(0, 20, size=(n,) + shape).astype(np.int32)
    return RNG.normal(size=(n,) + shape).astype(np.float32)


def _reference_model(kind_factory, shape, dtype, two_inputs, wrapper):
    """The same layer, unwrapped, with `mask * weight` as its weights."""
    layer = kind_factory()
    model = _one_layer_model(layer, shape, dtype, two_inputs)
    masked = {id(p.weight): (p.weight * p.mask).numpy()
              for p in wrapper.pruned_weights}
    layer.set_weights([masked.get(id(v), v.numpy())
                       for v in wrapper.layer.weights])
    return model


@pytest.mark.parametrize('kind', LAYER_KINDS, ids=lambda k: k[0])
def test_layer_kind_pruned_to_target_in_fit(kind):
    _, factory, shape, dtype, two_inputs, names = kind
    model = tf_prune.prune(_one_layer_model(factory(), shape, dtype,
                                            two_inputs), SPEC)
    wrapper = model.layers[-1]
    assert isinstance(wrapper, tf_prune.PruneWrapper)
    assert [p.name for p in wrapper.pruned_weights] == names
    x = _data(shape, dtype)
    y = RNG.normal(size=(64,) + tuple(model.output.shape[1:])).astype(
        np.float32)
    model.compile(keras.optimizers.SGD(0.01), 'mse')
    callback = tf_prune.PruningCallback(SPEC)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0,
                        callbacks=[callback])
    for p in wrapper.pruned_weights:
        n = p.mask.shape.num_elements()
        kept = float(np.sum(p.mask.numpy()))
        assert kept == np.round(n * 0.5), p.name
    assert history.history['sparsity'][-1] == pytest.approx(
        float(callback.pruning.model_sparsity.numpy()))
    reference = _reference_model(factory, shape, dtype, two_inputs, wrapper)
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               reference.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_dense_forward_is_mask_times_weight_by_hand():
    model = tf_prune.prune(_one_layer_model(keras.layers.Dense(3), (4,)))
    wrapper = model.layers[-1]
    p = wrapper.pruned_weights[0]
    mask = (RNG.random((4, 3)) > 0.5).astype(np.float32)
    p.mask.assign(mask)
    x = _data((4,), 'float32', n=5)
    expected = x @ (p.weight.numpy() * mask) + wrapper.layer.bias.numpy()
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('factory,shape', [
    (lambda: keras.layers.Dense(8), (6,)),
    (lambda: keras.layers.LSTM(6), (5, 4)),
], ids=['dense', 'lstm'])
def test_masked_entries_keep_their_value_through_fit(factory, shape):
    model = tf_prune.prune(_one_layer_model(factory(), shape))
    wrapper = model.layers[-1]
    masks = {}
    for p in wrapper.pruned_weights:
        masks[p.name] = (RNG.random(p.mask.shape) > 0.5).astype(np.float32)
        p.mask.assign(masks[p.name])
    before = {p.name: p.weight.numpy().copy() for p in wrapper.pruned_weights}
    model.compile(keras.optimizers.Adam(0.01), 'mse')
    x = _data(shape, 'float32')
    model.fit(x, RNG.normal(size=(64,) + tuple(model.output.shape[1:])),
              epochs=2, batch_size=16, verbose=0)
    for p in wrapper.pruned_weights:
        after = p.weight.numpy()
        pruned = masks[p.name] == 0
        np.testing.assert_array_equal(after[pruned], before[p.name][pruned])
        assert np.all(after[~pruned] != before[p.name][~pruned]), p.name


def test_get_config_round_trip_and_load_model_without_custom_objects(tmp_path):
    model = tf_prune.prune(_one_layer_model(
        keras.layers.Bidirectional(keras.layers.LSTM(3)), (4, 2)))
    wrapper = model.layers[-1]
    config = wrapper.get_config()
    assert config['prune_option'] == 'weight'
    assert config['name'] == wrapper.name
    copy = tf_prune.PruneWrapper.from_config(config)
    assert isinstance(copy.layer, keras.layers.Bidirectional)
    for p in wrapper.pruned_weights:
        p.mask.assign((RNG.random(p.mask.shape) > 0.3).astype(np.float32))
        p.threshold.assign(0.25)
    wrapper.last_mask_update_step.assign(7)
    path = str(tmp_path / 'm.keras')
    model.save(path)
    loaded = keras.models.load_model(path)
    loaded_wrapper = loaded.layers[-1]
    assert isinstance(loaded_wrapper, tf_prune.PruneWrapper)
    for p, q in zip(wrapper.pruned_weights, loaded_wrapper.pruned_weights):
        assert p.mask_name == q.mask_name
        np.testing.assert_array_equal(p.mask.numpy(), q.mask.numpy())
        assert float(q.threshold.numpy()) == 0.25
    assert int(loaded_wrapper.last_mask_update_step.numpy()) == 7
    x = _data((4, 2), 'float32', n=3)
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_mask_and_threshold_names_follow_contrib():
    single = tf_prune.prune(_one_layer_model(
        keras.layers.Conv2D(2, 3, name='conv1'), (5, 5, 1)))
    p = single.get_layer('conv1').pruned_weights[0]
    assert (p.name, p.mask_name, p.threshold_name) == (
        'conv1/kernel', 'conv1/mask', 'conv1/threshold')
    assert p.mask.path == 'conv1/mask'
    several = tf_prune.prune(_one_layer_model(
        keras.layers.LSTM(2, name='lstm'), (3, 2)))
    names = [(p.mask_name, p.threshold_name)
             for p in several.get_layer('lstm').pruned_weights]
    assert names == [('lstm/kernel/mask', 'lstm/kernel/threshold'),
                     ('lstm/recurrent_kernel/mask',
                      'lstm/recurrent_kernel/threshold')]


def test_mask_matches_weight_dtype_and_is_not_trainable():
    model = tf_prune.prune(_one_layer_model(
        keras.layers.Dense(2, dtype='float64'), (3,)))
    p = model.layers[-1].pruned_weights[0]
    assert p.mask.dtype == 'float64' and p.threshold.dtype == 'float64'
    assert not p.mask.trainable and not p.threshold.trainable
    assert p.mask.shape == p.weight.shape
    np.testing.assert_array_equal(p.mask.numpy(), 1.0)


def test_biases_and_normalization_are_never_pruned():
    dense = keras.layers.Dense(3)
    dense.build((None, 2))
    assert [name for name, _ in prunable_weights(dense)] == ['kernel']
    model = tf_prune.prune(keras.Sequential([
        keras.Input((4,)), keras.layers.Dense(3),
        keras.layers.BatchNormalization(), keras.layers.LayerNormalization()]),
        strict=True)
    assert [type(layer).__name__ for layer in model.layers] == [
        'PruneWrapper', 'BatchNormalization', 'LayerNormalization']


def test_unknown_layer_rejected_by_wrapper_with_the_fix():
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1],))

        def call(self, x):
            return x * self.w

    with pytest.raises(ValueError, match='get_prunable_weights'):
        tf_prune.PruneWrapper(Scale())


def test_activity_regularizer_loss_reaches_the_model():
    layer = keras.layers.Dense(2, activity_regularizer='l2')
    model = tf_prune.prune(_one_layer_model(layer, (3,)))
    model(np.ones((1, 3), np.float32))
    assert len(model.losses) == 1
    assert float(model.losses[0]) > 0


def test_embedding_mask_zero_propagates_through_wrapper():
    inputs = keras.Input((None,), dtype='int32')
    embedded = keras.layers.Embedding(10, 3, mask_zero=True, name='emb')(inputs)
    outputs = keras.layers.LSTM(2, name='lstm')(embedded)
    model = tf_prune.prune(keras.Model(inputs, outputs))
    padded = model(np.array([[1, 2, 0, 0]], np.int32)).numpy()
    # With the mask, padding steps leave the LSTM's result as it was.
    np.testing.assert_allclose(padded, model(np.array([[1, 2]], np.int32)),
                               rtol=1e-6)


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy('mixed_float16')
    yield
    keras.mixed_precision.set_global_policy('float32')


@pytest.mark.parametrize('factory,shape', [
    (lambda: keras.layers.Dense(8), (6,)),
    (lambda: keras.layers.LSTM(6), (5, 4)),
], ids=['dense', 'lstm'])
def test_mixed_float16_policy(mixed_float16, factory, shape):
    model = tf_prune.prune(_one_layer_model(factory(), shape),
                           'target_sparsity=0.5')
    wrapper = model.layers[-1]
    assert wrapper.compute_dtype == 'float16'
    model.compile(keras.optimizers.SGD(0.01), 'mse')
    x = _data(shape, 'float32')
    model.fit(x, RNG.normal(size=(64,) + tuple(model.output.shape[1:])),
              batch_size=16, verbose=0,
              callbacks=[tf_prune.PruningCallback(
                  'target_sparsity=0.5,pruning_frequency=1,'
                  'sparsity_function_end_step=2')])
    for p in wrapper.pruned_weights:
        assert p.mask.dtype == p.weight.dtype == 'float32'
        assert float(np.mean(p.mask.numpy())) == 0.5
    outputs = model.predict(x, verbose=0)
    assert outputs.dtype == np.float16
    reference = _reference_model(factory, shape, 'float32', False, wrapper)
    np.testing.assert_array_equal(outputs, reference.predict(x, verbose=0))
