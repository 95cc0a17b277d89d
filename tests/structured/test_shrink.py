"""`shrink` computes what the zeroed model computes, with fewer parameters,
on every layer kind the channel analysis follows."""

import keras
import numpy as np
import pytest

from tf_prune import structured

L = keras.layers


def _conv1d():
    inputs = keras.Input((16, 3), name='sequence')
    x = L.Conv1D(8, 3, padding='same', name='conv')(inputs)
    x = L.BatchNormalization(name='bn')(x)
    x = L.ReLU(name='relu')(x)
    x = L.MaxPooling1D(2, name='pool')(x)
    x = L.ZeroPadding1D(1, name='pad')(x)
    x = L.Cropping1D(1, name='crop')(x)
    x = L.UpSampling1D(2, name='up')(x)
    x = L.SeparableConv1D(6, 3, depth_multiplier=2, padding='same',
                          activation='relu', name='separable')(x)
    x = L.DepthwiseConv1D(3, padding='same', name='depthwise')(x)
    x = L.Conv1DTranspose(5, 3, name='transpose')(x)
    x = L.ELU(name='elu')(x)
    x = L.GlobalAveragePooling1D(name='gap')(x)
    return keras.Model(inputs, L.Dense(3, name='logits')(x)), (2, 16, 3)


def _conv2d():
    inputs = keras.Input((8, 8, 3), name='image')
    x = L.Conv2D(8, 3, padding='same', name='conv')(inputs)
    x = L.BatchNormalization(name='bn')(x)
    x = L.Activation('swish', name='swish')(x)
    x = L.AveragePooling2D(2, name='pool')(x)
    x = L.ZeroPadding2D(1, name='pad')(x)
    x = L.Cropping2D(1, name='crop')(x)
    x = L.UpSampling2D(name='up')(x)
    x = L.SeparableConv2D(6, 3, depth_multiplier=2, padding='same',
                          name='separable')(x)
    x = L.BatchNormalization(name='bn2')(x)
    x = L.LeakyReLU(name='leaky')(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, padding='same',
                          name='depthwise')(x)
    x = L.PReLU(shared_axes=[1, 2], name='prelu')(x)
    x = L.Conv2DTranspose(5, 3, strides=2, name='transpose')(x)
    x = L.Dropout(0.5, name='dropout')(x)
    x = L.Flatten(name='flatten')(x)
    x = L.Dense(7, activation='gelu', name='fc')(x)
    return keras.Model(inputs, L.Dense(3, name='logits')(x)), (2, 8, 8, 3)


def _conv3d():
    inputs = keras.Input((4, 4, 4, 2), name='volume')
    x = L.Conv3D(6, 3, padding='same', name='conv')(inputs)
    x = L.BatchNormalization(name='bn')(x)
    x = L.Activation('relu', name='relu')(x)
    x = L.MaxPooling3D(name='pool')(x)
    x = L.ZeroPadding3D(1, name='pad')(x)
    x = L.Cropping3D(1, name='crop')(x)
    x = L.UpSampling3D(name='up')(x)
    x = L.Conv3DTranspose(4, 3, padding='same', activation='tanh',
                          name='transpose')(x)
    x = L.GlobalMaxPooling3D(name='gmp')(x)
    return keras.Model(inputs, L.Dense(3, name='logits')(x)), (2, 4, 4, 4, 2)


def _merges():
    inputs = keras.Input((8, 8, 3), name='image')
    a = L.Conv2D(6, 3, padding='same', use_bias=False, name='a')(inputs)
    a = L.BatchNormalization(name='bn')(a)
    a = L.ReLU(name='relu')(a)
    b = L.Conv2D(6, 1, activation='relu', name='b')(a)
    c = L.Conv2D(6, 1, name='c')(a)
    x = L.Add(name='add')([a, b])
    x = L.Subtract(name='subtract')([x, c])
    x = L.Maximum(name='maximum')([x, a])
    x = L.Minimum(name='minimum')([x, b])
    x = L.Average(name='average')([x, a])
    d = L.Conv2D(4, 1, name='d')(a)
    x = L.Concatenate(name='concat')([x, d])
    s = L.GlobalAveragePooling2D(name='gap')(x)
    s = L.Dense(4, activation='relu', name='squeeze')(s)
    s = L.Dense(10, activation='sigmoid', name='excite')(s)
    s = L.Reshape((1, 1, 10), name='reshape')(s)
    x = L.Multiply(name='gate')([x, s])
    return keras.Model(inputs, L.Conv2D(2, 1, name='out')(x)), (2, 8, 8, 3)


def _mlp():
    model = keras.Sequential([
        keras.Input((10,), name='features'),
        L.Dense(16, activation='relu', name='fc1'),
        L.Dropout(0.2, name='dropout'),
        L.Dense(12, activation='tanh', name='fc2'),
        L.BatchNormalization(name='bn'),
        L.Dense(3, name='logits')], name='mlp')
    return model, (2, 10)


def _nested():
    block = keras.Sequential([
        keras.Input((8, 8, 3)),
        L.Conv2D(8, 3, padding='same', use_bias=False, name='conv'),
        L.BatchNormalization(scale=False, name='bn'),
        L.ReLU(name='relu')], name='block')
    inner_in = keras.Input((8, 8, 8))
    inner_x = L.Conv2D(6, 1, activation='relu', name='expand')(inner_in)
    inner_x = L.Conv2D(8, 1, name='project')(inner_x)
    residual = keras.Model(inner_in, L.Add(name='add')([inner_in, inner_x]),
                           name='residual')
    inputs = keras.Input((8, 8, 3), name='image')
    x = residual(residual(block(inputs)))
    x = L.GlobalAveragePooling2D(name='gap')(x)
    return keras.Model(inputs, L.Dense(3, name='logits')(x)), (2, 8, 8, 3)


def _cloned_nested():
    model, shape = _nested()
    clone = keras.models.clone_model(model, recursive=True)
    clone.set_weights(model.get_weights())
    return clone, shape


MODELS = [_conv1d, _conv2d, _conv3d, _merges, _mlp, _nested, _cloned_nested]


def _randomize(model):
    """Random normalization statistics and biases, so that zeroing and
    slicing them matters."""
    rng = np.random.default_rng(3)
    for variable in model.weights:
        if len(variable.shape) == 1:
            variable.assign(rng.uniform(0.5, 1.5, variable.shape)
                            .astype(np.float32))


def _layout(model):
    """Names and classes of the layers, into nested models."""
    return [(layer.name, type(layer).__name__,
             _layout(layer) if isinstance(layer, keras.Model) else None)
            for layer in model.layers]


def _outputs(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _assert_close(got, expected):
    scale = max(np.ptp(expected), 1e-12)
    assert np.abs(got - expected).max() <= 1e-5 * scale


def _shrink_and_check(model, shape, removed=None):
    """Shrinks `model`, checks it against the zeroed model, returns it."""
    _randomize(model)
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    dense = _outputs(model, x)
    if removed is None:
        removed = structured.keep_top(structured.find_channel_groups(model),
                                      0.5)
    before = [w.numpy().copy() for w in model.weights]

    shrunk = structured.shrink(model, removed)

    assert all(np.array_equal(a, w.numpy())
               for a, w in zip(before, model.weights)), 'original changed'
    structured.zero_channels(model, removed)
    zeroed = _outputs(model, x)
    assert not np.allclose(dense, zeroed), 'nothing was zeroed'
    _assert_close(_outputs(shrunk, x), zeroed)
    assert shrunk.count_params() < model.count_params()
    assert _layout(shrunk) == _layout(model)
    assert shrunk.name == model.name
    return shrunk, x


@pytest.mark.parametrize('build', MODELS, ids=lambda f: f.__name__[1:])
def test_shrink_computes_what_the_zeroed_model_computes(build):
    model, shape = build()
    _shrink_and_check(model, shape)


def test_shrink_sizes_every_member():
    model, shape = _conv2d()
    shrunk, _ = _shrink_and_check(model, shape)
    shapes = {w.path: tuple(w.shape) for w in shrunk.weights}
    # conv: 8 -> 4 filters; separable: 6 -> 3; transpose: 5 -> 3 (floor);
    # fc: 7 -> 4; Flatten keeps 3 of 5 channels at 17 * 17 positions.
    assert shapes['conv/kernel'] == (3, 3, 3, 4)
    assert shapes['bn/moving_variance'] == (4,)
    assert shapes['separable/depthwise_kernel'] == (3, 3, 4, 2)
    assert shapes['separable/pointwise_kernel'] == (1, 1, 8, 3)
    assert shapes['depthwise/kernel'] == (3, 3, 3, 2)
    assert shapes['prelu/alpha'] == (1, 1, 6)
    assert shapes['transpose/kernel'] == (3, 3, 3, 6)
    assert shapes['fc/kernel'] == (3 * 17 * 17, 4)
    assert shapes['logits/kernel'] == (4, 3)


def test_shrink_reads_keep_vectors_and_groups():
    model, shape = _merges()
    found = structured.find_channel_groups(model)
    (stream,) = [g for g in found.groups if g.name == 'a']
    (squeeze,) = [g for g in found.groups if g.name == 'squeeze']
    keep = np.ones(stream.size, bool)
    keep[[0, 2]] = False
    shrunk, _ = _shrink_and_check(model, shape, {stream: keep,
                                                 squeeze.id: [1]})
    shapes = {w.path: tuple(w.shape) for w in shrunk.weights}
    assert shapes['a/kernel'] == (3, 3, 3, 4)
    assert shapes['c/kernel'] == (1, 1, 4, 4)
    # The gate: 6 - 2 channels of the stream and d's 4, from 4 - 1 inputs.
    assert shapes['excite/kernel'] == (3, 8)
    assert shrunk.get_layer('reshape').target_shape == (1, 1, 8)
    assert shapes['out/kernel'] == (1, 1, 8, 2)


def test_the_shrunk_model_saves_and_loads_with_plain_keras(tmp_path):
    model, shape = _merges()
    shrunk, x = _shrink_and_check(model, shape)
    path = tmp_path / 'shrunk.keras'
    shrunk.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(_outputs(loaded, x), _outputs(shrunk, x))


def test_shrink_with_nothing_removed_copies_the_model():
    model, shape = _conv1d()
    x = np.ones(shape, np.float32)
    copy = structured.shrink(model, {})
    assert copy is not model
    assert copy.count_params() == model.count_params()
    np.testing.assert_allclose(_outputs(copy, x), _outputs(model, x),
                               rtol=1e-6)
