"""`strip_pruning`: a pruned Keras model back to a plain one."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_prune
from tf_prune.keras.wrapper import find_wrappers


def _train_masks(model, sparsity=0.75):
    tf_prune.Pruning(f'target_sparsity={sparsity},begin_pruning_step=0,'
                     f'end_pruning_step=1,sparsity_function_end_step=1',
                     model).mask_update(tf.constant(1, tf.int64))


def _functional():
    inputs = keras.Input((12, 12, 1), name='image')
    x = keras.layers.Conv2D(4, 3, activation='relu', name='conv1')(inputs)
    x = keras.layers.BatchNormalization(name='norm')(x)
    x = keras.layers.Flatten(name='flatten')(x)
    outputs = keras.layers.Dense(5, name='logits')(x)
    return keras.Model(inputs, outputs), (3, 12, 12, 1)


def _sequential_lstm():
    return keras.Sequential([
        keras.Input((6, 4), name='rows'),
        keras.layers.LSTM(8, name='lstm'),
        keras.layers.Dense(3, name='logits')]), (3, 6, 4)


def _nested():
    inner = keras.Sequential([keras.Input((6,)),
                              keras.layers.Dense(7, name='inner_fc')],
                             name='block')
    inputs = keras.Input((6,), name='features')
    outputs = keras.layers.Dense(2, name='logits')(inner(inputs))
    return keras.Model(inputs, outputs), (3, 6)


class _Subclassed(keras.Model):

    def __init__(self):
        super().__init__()
        self.fc1 = keras.layers.Dense(7, activation='relu', name='fc1')
        self.fc2 = keras.layers.Dense(3, name='fc2')

    def call(self, inputs):
        return self.fc2(self.fc1(inputs))


def _subclassed():
    model = _Subclassed()
    model(np.zeros((1, 5), np.float32))
    return model, (3, 5)


def _short(path):
    return '/'.join(path.split('/')[-2:])


@pytest.mark.parametrize('build', [_functional, _sequential_lstm, _nested,
                                   _subclassed])
def test_strip_pruning_gives_a_plain_model_with_masked_weights(build):
    model, shape = build()
    classes = {l.name: type(l) for l in model._flatten_layers() if l is not model}
    pruned = tf_prune.prune(model)
    _train_masks(pruned)
    batch = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    expected = pruned(batch).numpy()
    # Keyed '<layer>/<weight>': a copy's path may lack an outer model's name.
    masked = {_short(p.weight.path): (p.mask * p.weight).numpy()
              for w in find_wrappers(pruned)
              for p in w.pruned_weights}

    stripped = tf_prune.strip_pruning(pruned)

    layers = [l for l in stripped._flatten_layers() if l is not stripped]
    assert not [l for l in layers if isinstance(l, tf_prune.PruneWrapper)]
    assert {l.name: type(l) for l in layers} == classes
    assert not [v for v in stripped.weights
                if v.name in ('mask', 'threshold', 'last_mask_update_step')]
    np.testing.assert_allclose(stripped(batch).numpy(), expected,
                               rtol=0, atol=1e-6)
    values = {_short(v.path): v.numpy() for v in stripped.weights}
    for path, value in masked.items():
        np.testing.assert_array_equal(values[path], value)
        assert 0.7 < np.mean(value == 0) < 0.8


def test_strip_pruning_leaves_a_graph_model_pruned():
    model, shape = _functional()
    pruned = tf_prune.prune(model)
    _train_masks(pruned)
    tf_prune.strip_pruning(pruned)
    assert len(find_wrappers(pruned)) == 2
    kernel = pruned.get_layer('conv1').layer.kernel.numpy()
    assert np.mean(kernel == 0) < 0.1  # the weights themselves never change
