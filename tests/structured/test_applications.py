"""Keras' own architectures: one-shot L1 channel pruning at 0.5, and the
shrunk model computes what the masked one does."""

import keras
import numpy as np
import pytest

import tf_prune
from tf_prune import structured
from tf_prune.keras.wrapper import find_wrappers

# Architecture, its channel groups, its parameters after shrinking at 0.5
# (at 32x32, 10 classes) when no score ties with a threshold. Only the
# classifier's outputs stay whole: every other group is followed exactly.
ARCHITECTURES = [
    ('ResNet50', 38, 5_942_730),
    ('VGG16', 16, 8_423_338),
    ('MobileNetV2', 26, 604_234),
    ('DenseNet121', 121, 1_808_682),
    ('EfficientNetB0', 41, 1_087_871),
]


def _randomize(model):
    """Random normalization statistics and biases, so that zeroing and
    slicing them matters."""
    rng = np.random.default_rng(3)
    for variable in model.weights:
        if len(variable.shape) == 1:
            variable.assign(rng.uniform(0.5, 1.5, variable.shape)
                            .astype(np.float32))


# The five take 16 s on an idle machine, over 20 s on a busy one.
@pytest.mark.slow
@pytest.mark.parametrize('name, group_count, shrunk_params', ARCHITECTURES,
                         ids=[a[0] for a in ARCHITECTURES])
def test_an_application_shrinks_to_what_its_zeroed_model_computes(
        name, group_count, shrunk_params):
    model = getattr(keras.applications, name)(
        input_shape=(32, 32, 3), weights=None, classes=10,
        classifier_activation=None)
    _randomize(model)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(
        np.float32)
    dense = keras.ops.convert_to_numpy(model(x, training=False))

    found = structured.find_channel_groups(model)
    pruned = tf_prune.prune(model, 'structure=channel,target_sparsity=0.5',
                            one_shot=True)
    shrunk = tf_prune.shrink(pruned)

    zeroed = keras.ops.convert_to_numpy(pruned(x, training=False))
    got = keras.ops.convert_to_numpy(shrunk(x, training=False))
    assert not np.allclose(dense, zeroed)
    difference = np.abs(got - zeroed).max() / np.ptp(zeroed)
    print(f'{name}: {model.count_params()} -> {shrunk.count_params()} '
          f'parameters, max difference {difference:.1e} of the range; '
          f'{structured.describe_unprunable(found)}')
    assert difference <= 1e-5
    assert [(layer.name, type(layer)) for layer in shrunk.layers] == [
        (layer.name, type(layer)) for layer in model.layers]
    assert len(found.groups) == group_count
    # Half of each group's channels go: update_mask keeps round(n / 2),
    # and ties with the threshold (contrib's rule) may keep more.
    for wrapper in find_wrappers(pruned):
        if wrapper.channel_state is not None:
            mask = wrapper.channel_state.mask.numpy()
            assert mask.sum() >= round(mask.size / 2), wrapper.name
    assert shrunk_params <= shrunk.count_params() < (
        shrunk_params + model.count_params() // 1000)
    assert [(found.groups[u.group].name, len(u.channels), u.reason)
            for u in found.unprunable] == [
                ('predictions', 10, "model output of 'predictions'")]
