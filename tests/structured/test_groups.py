"""`find_channel_groups` on hand-built graphs: which channels go together,
through which weight axes, and which stay."""

import dataclasses
import logging

import keras
import numpy as np
import pytest

from tf_prune import structured
from tf_prune.structured import groups as groups_lib

L = keras.layers


def _group(found, producer):
    """The group whose first producer is the layer at path `producer`."""
    (group,) = [g for g in found.groups if g.name == producer]
    return group


def _axes(group):
    return [(m.layer, m.weight, m.axis, m.role) for m in group.members]


def _channels(group, layer, weight, axis):
    (member,) = [m for m in group.members
                 if (m.layer, m.weight, m.axis) == (layer, weight, axis)]
    return member.channels


def _reasons(found, producer):
    group = _group(found, producer)
    return [u.reason for u in found.unprunable if u.group == group.id]


def _image(shape=(8, 8, 3)):
    return keras.Input(shape, name='image')


def test_a_residual_add_couples_both_convolutions():
    inputs = _image()
    x = L.Conv2D(8, 3, padding='same', use_bias=False, name='a')(inputs)
    x = L.BatchNormalization(name='bn')(x)
    x = L.ReLU(name='relu')(x)
    y = L.Conv2D(8, 3, padding='same', activation='relu', name='b')(x)
    x = L.Add(name='add')([x, y])
    x = L.Conv2D(4, 1, name='c')(x)
    x = L.GlobalAveragePooling2D(name='gap')(x)
    outputs = L.Dense(3, name='logits')(x)
    found = structured.find_channel_groups(keras.Model(inputs, outputs))

    assert [(g.name, g.size) for g in found.groups] == [
        ('a', 8), ('c', 4), ('logits', 3)]
    residual = found.groups[0]
    assert _axes(residual) == [
        ('a', 'kernel', 3, 'filter'),
        ('bn', 'gamma', 0, 'norm'), ('bn', 'beta', 0, 'norm'),
        ('bn', 'moving_mean', 0, 'stat'), ('bn', 'moving_variance', 0, 'stat'),
        ('b', 'kernel', 2, 'input'), ('b', 'kernel', 3, 'filter'),
        ('b', 'bias', 0, 'bias'), ('c', 'kernel', 2, 'input')]
    assert all(m.channels == tuple(range(8)) for m in residual.members)
    assert [m.layer for m in residual.producers] == ['a', 'b']
    assert residual.fixed == () and residual.removable == tuple(range(8))
    assert _axes(found.groups[1]) == [
        ('c', 'kernel', 3, 'filter'), ('c', 'bias', 0, 'bias'),
        ('logits', 'kernel', 0, 'input')]
    assert found.groups[2].fixed == (0, 1, 2)
    assert found.unprunable == (groups_lib.Unprunable(
        2, (0, 1, 2), "model output of 'logits'"),)


def test_concatenate_maps_each_input_to_its_offset():
    inputs = _image()
    a = L.Conv2D(3, 1, name='a')(inputs)
    b = L.Conv2D(5, 1, name='b')(inputs)
    x = L.Concatenate(name='cat')([a, b])
    x = L.BatchNormalization(name='bn')(x)
    x = L.Conv2D(2, 1, name='c')(x)
    found = structured.find_channel_groups(keras.Model(inputs, x))

    assert [(g.name, g.size) for g in found.groups] == [
        ('a', 3), ('b', 5), ('c', 2)]
    assert _channels(found.groups[0], 'c', 'kernel', 2) == (
        0, 1, 2, -1, -1, -1, -1, -1)
    assert _channels(found.groups[1], 'c', 'kernel', 2) == (
        -1, -1, -1, 0, 1, 2, 3, 4)
    assert _channels(found.groups[1], 'bn', 'gamma', 0) == (
        -1, -1, -1, 0, 1, 2, 3, 4)


def test_depthwise_conv_passes_channels_through():
    inputs = _image()
    x = L.Conv2D(4, 1, name='a')(inputs)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, name='dw')(x)
    x = L.Conv2D(2, 1, name='c')(x)
    found = structured.find_channel_groups(keras.Model(inputs, x))

    group = _group(found, 'a')
    assert group.size == 4
    assert _axes(group) == [
        ('a', 'kernel', 3, 'filter'), ('a', 'bias', 0, 'bias'),
        ('dw', 'kernel', 2, 'depthwise'), ('dw', 'bias', 0, 'depthwise'),
        ('c', 'kernel', 2, 'input')]
    assert _channels(group, 'dw', 'bias', 0) == (0, 0, 1, 1, 2, 2, 3, 3)
    assert _channels(group, 'c', 'kernel', 2) == (0, 0, 1, 1, 2, 2, 3, 3)
    assert group.fixed == ()


def _squeeze_excitation(merge):
    inputs = _image()
    x = L.Conv2D(6, 3, activation='relu', name='x')(inputs)
    s = L.GlobalAveragePooling2D(name='gap')(x)
    s = L.Dense(2, activation='relu', name='squeeze')(s)
    s = L.Dense(6, activation='sigmoid', name='excite')(s)
    s = L.Reshape((1, 1, 6), name='reshape')(s)
    x = merge(name='gate')([x, s])
    x = L.Conv2D(2, 1, name='out')(x)
    return structured.find_channel_groups(keras.Model(inputs, x))


def test_a_squeeze_excitation_multiply_joins_the_gate_and_stays_exact():
    found = _squeeze_excitation(L.Multiply)

    assert [(g.name, g.size) for g in found.groups] == [
        ('x', 6), ('squeeze', 2), ('out', 2)]
    group = found.groups[0]
    assert _axes(group) == [
        ('x', 'kernel', 3, 'filter'), ('x', 'bias', 0, 'bias'),
        ('squeeze', 'kernel', 0, 'input'), ('excite', 'kernel', 1, 'filter'),
        ('excite', 'bias', 0, 'bias'),
        ('reshape', 'target_shape', 2, 'shape'), ('out', 'kernel', 2, 'input')]
    # sigmoid(0) = 0.5, but the gated channel is 0.
    assert group.fixed == ()
    assert found.groups[1].fixed == ()


def test_a_sigmoid_path_that_is_added_stays_whole():
    found = _squeeze_excitation(L.Add)

    assert found.groups[0].fixed == tuple(range(6))
    assert _reasons(found, 'x') == [
        "nonzero where 'out' reads it: 'excite' maps 0 to 0.5 (sigmoid)"]


def test_flatten_then_dense_maps_each_channel_to_its_rows():
    inputs = _image((2, 2, 1))
    x = L.Conv2D(3, 1, name='a')(inputs)
    x = L.Flatten(name='flatten')(x)
    x = L.Dense(5, name='fc')(x)
    outputs = L.Dense(2, name='logits')(x)
    found = structured.find_channel_groups(keras.Model(inputs, outputs))

    assert _channels(_group(found, 'a'), 'fc', 'kernel', 0) == (0, 1, 2) * 4
    assert _axes(_group(found, 'fc')) == [
        ('fc', 'kernel', 1, 'filter'), ('fc', 'bias', 0, 'bias'),
        ('logits', 'kernel', 0, 'input')]


def test_global_pooling_then_dense_maps_one_to_one():
    inputs = _image()
    x = L.Conv2D(5, 3, name='a')(inputs)
    x = L.GlobalMaxPooling2D(name='gmp')(x)
    x = L.Dense(2, name='fc')(x)
    found = structured.find_channel_groups(keras.Model(inputs, x))

    assert _channels(_group(found, 'a'), 'fc', 'kernel', 0) == tuple(range(5))


def test_what_is_not_followed_stays_whole_with_a_reason():
    inputs = _image((4, 4, 3))
    a = L.Conv2D(4, 1, name='a')(inputs)
    mixed = L.Reshape((4, 4, 2, 2), name='split')(a)
    mixed = L.Reshape((4, 4, 4), name='merge')(mixed)
    b = L.Conv2D(4, 1, name='b')(inputs)
    b = L.Lambda(lambda t: t * 2, name='double')(b)
    c = L.Conv2D(4, 1, activation='sigmoid', name='c')(inputs)
    d = L.Conv2D(4, 1, activation='sigmoid', name='d')(inputs)
    d = L.BatchNormalization(name='bn')(d)
    e = L.Conv2D(4, 1, name='e')(inputs)
    e = L.LayerNormalization(name='ln')(e)
    x = L.Concatenate(name='cat')([mixed, b, c, d, e])
    outputs = L.Conv2D(2, 1, name='out')(x)
    found = structured.find_channel_groups(keras.Model(inputs, outputs))

    assert _reasons(found, 'a') == [
        "read by Reshape 'split' (moves values across channels)"]
    assert _reasons(found, 'b') == ["read by Lambda 'double' (not followed)"]
    assert _reasons(found, 'c') == [
        "nonzero where 'out' reads it: 'c' maps 0 to 0.5 (sigmoid)"]
    # BatchNormalization zeroes the channel again after the sigmoid.
    assert _group(found, 'd').fixed == ()
    assert _reasons(found, 'e') == [
        "read by LayerNormalization 'ln' (not followed)"]
    assert structured.describe_unprunable(found).startswith(
        "5 of 6 channel groups have unprunable channels: group 0 (a) 4/4: "
        "read by Reshape 'split'")


def test_log_unprunable_logs_one_line(caplog):
    inputs = _image()
    x = L.Conv2D(4, 1, name='a')(inputs)
    found = structured.find_channel_groups(keras.Model(inputs, x))
    # On absl's logger: a test before may have set absl's verbosity.
    with caplog.at_level(logging.INFO, logger='absl'):
        structured.log_unprunable(found)
    assert [r.getMessage() for r in caplog.records] == [
        "1 of 1 channel groups have unprunable channels: group 0 (a) 4/4: "
        "model output of 'a'"]


def test_a_nested_sequential_is_followed_into():
    block = keras.Sequential([
        keras.Input((8, 8, 3)),
        L.Conv2D(6, 3, use_bias=False, name='conv'),
        L.BatchNormalization(scale=False, name='bn'),
        L.ReLU(name='relu')], name='block')
    inputs = _image()
    x = L.Conv2D(2, 1, name='head')(block(inputs))
    found = structured.find_channel_groups(keras.Model(inputs, x))

    group = _group(found, 'block/conv')
    assert _axes(group) == [
        ('block/conv', 'kernel', 3, 'filter'),
        ('block/bn', 'beta', 0, 'norm'),
        ('block/bn', 'moving_mean', 0, 'norm'),
        ('block/bn', 'moving_variance', 0, 'stat'),
        ('head', 'kernel', 2, 'input')]
    assert group.fixed == ()


def test_a_layer_called_twice_couples_what_it_reads():
    inputs = _image()
    a = L.Conv2D(4, 1, name='a')(inputs)
    b = L.Conv2D(4, 1, name='b')(inputs)
    shared = L.Conv2D(3, 1, name='shared')
    x = L.Concatenate(name='cat')([shared(a), shared(b)])
    found = structured.find_channel_groups(
        keras.Model(inputs, L.Conv2D(2, 1, name='out')(x)))

    assert sorted((g.size, sorted(m.layer for m in g.producers))
                  for g in found.groups) == [
        (2, ['out']), (3, ['shared']), (4, ['a', 'b'])]
    assert _channels(_group(found, 'shared'), 'out', 'kernel', 2) == (
        0, 1, 2) * 2


def test_a_hard_sigmoid_made_of_ops_is_followed():
    inputs = _image()
    x = L.Conv2D(4, 1, name='a')(inputs)
    gate = L.ReLU(6.0, name='relu6')(x + 3.0) * (1.0 / 6.0)
    x = L.Multiply(name='hard_swish')([x, gate])
    found = structured.find_channel_groups(
        keras.Model(inputs, L.Conv2D(2, 1, name='out')(x)))
    assert _group(found, 'a').fixed == ()

    inputs = _image()
    x = L.Conv2D(4, 1, name='a')(inputs)
    found = structured.find_channel_groups(
        keras.Model(inputs, L.Conv2D(2, 1, name='out')(x - 1.0)))
    assert _group(found, 'a').fixed == (0, 1, 2, 3)


def test_channels_first_and_grouped_convolutions_stay_whole():
    inputs = _image()
    a = L.Conv2D(4, 1, name='a')(inputs)
    b = L.Conv2D(4, 1, name='b')(inputs)
    a = L.Conv2D(4, 3, groups=2, name='grouped')(a)
    b = L.MaxPooling2D(data_format='channels_first', name='pool')(b)
    found = structured.find_channel_groups(keras.Model(inputs, [a, b]))
    assert _reasons(found, 'a') == [
        "read by Conv2D 'grouped' (grouped convolution)"]
    assert _reasons(found, 'b') == [
        "read by MaxPooling2D 'pool' (channels_first)"]


class _Subclassed(keras.Model):

    def __init__(self):
        super().__init__(name='custom')
        self.fc = L.Dense(3)

    def call(self, inputs):
        return self.fc(inputs)


def test_a_subclassed_model_is_refused_with_the_limitation():
    model = _Subclassed()
    model(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="Sequential and Functional models "
                       "only, and 'custom' is a subclassed _Subclassed"):
        structured.find_channel_groups(model)


def _conv_pair():
    inputs = _image((4, 4, 1))
    x = L.Conv2D(4, 1, use_bias=False, name='a')(inputs)
    model = keras.Model(inputs, L.Conv2D(2, 1, name='out')(x))
    model.get_layer('a').kernel.assign(
        np.array([[[[3.0, -1.0, 0.5, -2.0]]]], np.float32))
    return model


def test_l1_scores_and_keep_top_pick_the_weakest_removable_channels():
    found = structured.find_channel_groups(_conv_pair())
    group = found.groups[0]
    np.testing.assert_allclose(structured.l1_scores(group),
                               [3.0, 1.0, 0.5, 2.0])

    assert structured.keep_top(found, 0.5) == {0: (1, 2)}
    assert structured.keep_top(found, 0.3) == {0: (2,)}
    # At least one channel stays; the output group stays whole.
    assert structured.keep_top(found, 1.0) == {0: (1, 2, 3)}
    with pytest.raises(ValueError, match='fraction_removed=2'):
        structured.keep_top(found, 2)


def test_removed_channels_reads_indices_and_keep_vectors_and_refuses_misuse():
    found = structured.find_channel_groups(_conv_pair())
    group = found.groups[0]
    (mask,) = structured.removed_channels(found, {group: [1, 3]}).values()
    assert mask.tolist() == [False, True, False, True]
    keep = np.array([True, False, True, False])
    (mask,) = structured.removed_channels(found, {0: keep}).values()
    assert mask.tolist() == [False, True, False, True]

    with pytest.raises(ValueError, match=r"channels \[0\] of group 1 \(out\) "
                       r"cannot be removed \(model output of 'out'\)"):
        structured.removed_channels(found, {1: [0]})
    with pytest.raises(ValueError, match="every channel of 'a' \\(kernel"):
        structured.removed_channels(found, {0: [0, 1, 2, 3]})
    with pytest.raises(ValueError, match=r'channels \[4\] of group 0'):
        structured.removed_channels(found, {0: [4]})
    with pytest.raises(ValueError, match='shape \\(2,\\); give one of 4'):
        structured.removed_channels(found, {0: [True, False]})
    other = structured.find_channel_groups(_conv_pair())
    with pytest.raises(ValueError, match='not a group of this model'):
        structured.removed_channels(found, {
            dataclasses.replace(other.groups[0], size=5): [0]})
