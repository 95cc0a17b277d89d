"""prune(): which layers get wrapped, in which kinds of models, and the checks."""

import logging

import keras
import numpy as np
import pytest

import tf_prune
from tf_prune.keras.wrapper import find_wrappers

RNG = np.random.default_rng(1)


def _cnn():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name='conv1')(inputs)
    x = keras.layers.BatchNormalization(name='bn')(x)
    x = keras.layers.Conv2D(4, 3, name='conv2')(x)
    x = keras.layers.Flatten(name='flatten')(x)
    return keras.Model(inputs, keras.layers.Dense(3, name='dense')(x))


class _Block(keras.layers.Layer):
    """A custom layer holding sublayers, two of them in a list."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = keras.layers.Dense(4, name='first')
        self.rest = [keras.layers.Dense(4, name='second'),
                     keras.layers.Dense(4, name='third')]

    def call(self, x):
        x = self.first(x)
        for layer in self.rest:
            x = layer(x)
        return x


class SubclassedNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.block = _Block(name='block')
        self.head = keras.layers.Dense(2, name='head')
        self.norm = keras.layers.LayerNormalization(name='norm')

    def call(self, x):
        return self.head(self.norm(self.block(x)))


class _TiedOutput(keras.layers.Layer):
    """Projects onto an embedding's matrix: a weight shared by two layers."""

    def __init__(self, embedding, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding

    def get_prunable_weights(self):
        return [self.embedding.embeddings]

    def call(self, x):
        return keras.ops.matmul(x, keras.ops.transpose(self.embedding.embeddings))


def _wrapped_names(model):
    return [w.name for w in find_wrappers(model)]


def test_functional_model_is_rebuilt_with_names_and_weights():
    model = _cnn()
    x = RNG.normal(size=(2, 8, 8, 1)).astype(np.float32)
    before = model.predict(x, verbose=0)
    pruned = tf_prune.prune(model)
    assert [layer.name for layer in pruned.layers[1:]] == [
        layer.name for layer in model.layers[1:]]
    assert _wrapped_names(pruned) == ['conv1', 'conv2', 'dense']
    np.testing.assert_array_equal(pruned.predict(x, verbose=0), before)
    # The layers (and so the weights) are the original's; the original
    # model itself is not wrapped.
    assert pruned.get_layer('conv1').layer is model.get_layer('conv1')
    assert pruned.get_layer('bn') is model.get_layer('bn')
    assert not find_wrappers(model)


def test_sequential_and_nested_models():
    inner = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, name='a'),
                              keras.layers.Dense(4, name='b')], name='inner')
    outer = keras.Sequential([keras.Input((5,)), inner,
                              keras.layers.Dense(2, name='c')], name='outer')
    x = RNG.normal(size=(3, 5)).astype(np.float32)
    pruned = tf_prune.prune(outer)
    assert _wrapped_names(pruned) == ['a', 'b', 'c']
    assert isinstance(pruned.layers[0], keras.Sequential)
    np.testing.assert_allclose(pruned(x), outer(x), rtol=1e-6)


def test_subclassed_model_is_pruned_in_place_and_trains():
    model = SubclassedNet()
    x = RNG.normal(size=(32, 3)).astype(np.float32)
    model(x)
    pruned = tf_prune.prune(model, strict=True)
    assert pruned is model
    assert isinstance(model.head, tf_prune.PruneWrapper)
    assert isinstance(model.block.first, tf_prune.PruneWrapper)
    assert all(isinstance(layer, tf_prune.PruneWrapper)
               for layer in model.block.rest)
    assert sorted(_wrapped_names(model)) == ['first', 'head', 'second', 'third']
    # Each variable once in the model's weights, the masks included.
    ids = [id(v) for v in model.weights]
    assert len(ids) == len(set(ids))
    assert sum(v.name == 'mask' for v in model.weights) == 4
    model.compile(keras.optimizers.SGD(0.01), 'mse')
    spec = 'target_sparsity=0.75,pruning_frequency=1,sparsity_function_end_step=2'
    model.fit(x, RNG.normal(size=(32, 2)), batch_size=8, verbose=0,
              callbacks=[tf_prune.PruningCallback(spec)])
    head = model.head.pruned_weights[0]
    assert float(np.mean(head.mask.numpy())) == 0.25
    expected = model.norm(model.block(x)).numpy() @ (
        head.weight.numpy() * head.mask.numpy()) + model.head.layer.bias.numpy()
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5,
                               atol=1e-6)


def test_single_layer_comes_back_wrapped():
    dense = keras.layers.Dense(3, name='solo')
    wrapper = tf_prune.prune(dense)
    assert isinstance(wrapper, tf_prune.PruneWrapper)
    assert wrapper.layer is dense and wrapper.name == 'solo'
    out = wrapper(np.ones((1, 2), np.float32))
    assert out.shape == (1, 3)
    assert [p.mask_name for p in wrapper.pruned_weights] == ['solo/mask']


def test_shared_layer_is_wrapped_and_masked_once():
    inputs = keras.Input((4,))
    shared = keras.layers.Dense(4, name='shared')
    model = keras.Model(inputs, shared(shared(inputs)))
    pruned = tf_prune.prune(model)
    assert _wrapped_names(pruned) == ['shared']
    pruning = tf_prune.Pruning('target_sparsity=0.5', pruned)
    pruning.mask_update(200)
    assert len(pruning.get_masks()) == 1
    assert float(pruning.get_weight_sparsity()[0]) == 0.5


def test_weight_shared_by_two_layers_is_masked_once():
    inputs = keras.Input((3,), dtype='int32')
    embedding = keras.layers.Embedding(10, 4, name='embed')
    hidden = keras.layers.GlobalAveragePooling1D()(embedding(inputs))
    logits = _TiedOutput(embedding, name='tied')(hidden)
    model = tf_prune.prune(keras.Model(inputs, logits))
    wrappers = find_wrappers(model)
    assert [w.name for w in wrappers] == ['embed', 'tied']
    pruning = tf_prune.Pruning('target_sparsity=0.5', model)
    assert pruning.get_weight_names() == ['embed/embeddings']
    pruning.mask_update(100)
    first, second = (w.pruned_weights[0] for w in wrappers)
    assert first.weight is second.weight
    np.testing.assert_array_equal(first.mask.numpy(), second.mask.numpy())
    assert float(np.mean(first.mask.numpy())) == 0.5


def test_custom_layer_with_get_prunable_weights():
    class Scale(keras.layers.Layer):
        def build(self, shape):
            self.scale = self.add_weight(shape=(shape[-1],), name='scale')
            self.offset = self.add_weight(shape=(shape[-1],), name='offset')

        def get_prunable_weights(self):
            return [self.scale]

        def call(self, x):
            return x * self.scale + self.offset

    inputs = keras.Input((6,))
    model = tf_prune.prune(keras.Model(inputs, Scale(name='sc')(inputs)),
                           strict=True)
    wrapper = model.get_layer('sc')
    assert [p.name for p in wrapper.pruned_weights] == ['sc/scale']
    pruning = tf_prune.Pruning('target_sparsity=0.5', model)
    pruning.mask_update(100)
    x = np.ones((1, 6), np.float32)
    expected = wrapper.layer.scale.numpy() * wrapper.pruned_weights[0].mask.numpy()
    np.testing.assert_allclose(model(x).numpy()[0] - wrapper.layer.offset.numpy(),
                               expected, rtol=1e-6)


def _model_with_unknown_layers():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.ConvLSTM1D(2, 2, name='convlstm')(inputs)
    x = keras.layers.PReLU(name='prelu')(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name='out')(x))


def test_unknown_layers_are_listed_once_and_stay_dense(caplog):
    with caplog.at_level(logging.WARNING):
        pruned = tf_prune.prune(_model_with_unknown_layers())
    lines = [r.getMessage() for r in caplog.records
             if 'does not know' in r.getMessage()]
    assert len(lines) == 1
    assert 'convlstm (ConvLSTM1D)' in lines[0] and 'prelu (PReLU)' in lines[0]
    assert _wrapped_names(pruned) == ['out']


def test_strict_raises_naming_the_unknown_layers():
    with pytest.raises(ValueError, match=r'convlstm \(ConvLSTM1D\).*prelu'):
        tf_prune.prune(_model_with_unknown_layers(), strict=True)


def test_nothing_to_prune_is_an_error():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Flatten()])
    with pytest.raises(ValueError, match='no layer tf_prune can prune'):
        tf_prune.prune(model)


def test_contrib_readme_weight_sparsity_map_on_keras_layer_names():
    spec = ('target_sparsity=0.9,weight_sparsity_map=[conv1:0.9,'
            'conv2/kernel:0.8],sparsity_function_end_step=10')
    model = tf_prune.prune(_cnn(), spec)
    pruning = tf_prune.Pruning(spec, model)
    assert pruning.get_weight_names() == [
        'conv1/kernel', 'conv2/kernel', 'dense/kernel']
    pruning.mask_update(10)
    sizes = [w.shape.num_elements() for w in pruning.get_weights()]
    kept = [round(n * (1 - target)) for n, target in zip(sizes, [0.9, 0.8, 0.9])]
    expected = [1 - k / n for k, n in zip(kept, sizes)]
    sparsity = [float(s) for s in pruning.get_weight_sparsity()]
    assert sparsity == pytest.approx(expected, abs=1e-6)


def test_a_weight_two_patterns_match_is_an_error_at_prune():
    with pytest.raises(ValueError, match='Multiple matches in '
                       'weight_sparsity_map for weight conv1/kernel'):
        tf_prune.prune(_cnn(), 'weight_sparsity_map=[conv:0.5,conv1:0.9]')


def test_a_pattern_matching_nothing_is_logged(caplog):
    with caplog.at_level(logging.WARNING):
        tf_prune.prune(_cnn(), 'weight_sparsity_map=[conv3:0.5]')
    assert any("weight_sparsity_map pattern 'conv3' matches no pruned weight"
               in r.getMessage() for r in caplog.records)


def _fit_quietly(model, callbacks=()):
    model.compile('sgd', 'mse')
    model.fit(RNG.normal(size=(8, 8, 8, 1)), RNG.normal(size=(8, 3)),
              verbose=0, callbacks=list(callbacks))


def _uncontrolled_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if 'no tf_prune.Pruning updates its masks' in r.getMessage()]


def test_fit_without_pruning_warns_once(caplog):
    model = tf_prune.prune(_cnn())
    with caplog.at_level(logging.WARNING):
        _fit_quietly(model)
    (warning,) = _uncontrolled_warnings(caplog)
    assert 'PruningCallback' in warning


def test_the_warning_survives_save_load_and_clone(caplog, tmp_path):
    model = tf_prune.prune(_cnn())
    model.save(tmp_path / 'pruned.keras')
    loaded = keras.models.load_model(tmp_path / 'pruned.keras')
    cloned = keras.models.clone_model(model)
    for copy in (loaded, cloned):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            _fit_quietly(copy)
        assert len(_uncontrolled_warnings(caplog)) == 1


def test_fit_with_the_callback_does_not_warn(caplog):
    model = tf_prune.prune(_cnn())
    with caplog.at_level(logging.WARNING):
        _fit_quietly(model, [tf_prune.PruningCallback('')])
    assert not _uncontrolled_warnings(caplog)
