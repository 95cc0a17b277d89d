"""tf_prune.compat.v1.layers beyond contrib's own tests.

Graphs are built in `tf.Graph().as_default()` blocks, which need no TF1 mode
in this eager process (they behave as `disable_eager_execution()` does:
resource variables, TF 2 control flow). contrib's ported tests run in both
TF1 modes through `contrib_suite.py`.
"""

import numpy as np
import tensorflow as tf

from tests.conftest import GOLDEN_DIR
from tf_prune.compat.v1.layers import core_layers
from tf_prune.compat.v1.layers import layers
from tf_prune.compat.v1.layers import rnn_cells

v1 = tf.compat.v1
FIXTURE = GOLDEN_DIR / 'conv'
# The ops of one masked layer in contrib's graph, beyond its variables.
_LAYER_OP_TYPES = ('Mul', 'Conv2D', 'MatMul', 'BiasAdd', 'Relu')


def _collection_names(key):
    return [item.name for item in v1.get_collection(key)]


def _fixture_model(images):
    """The layers of contrib's checkpoint in FIXTURE, up to fc2."""
    conv1 = layers.masked_conv2d(images, 8, 3, scope='conv1')
    conv2 = layers.masked_conv2d(conv1, 16, 3, stride=2, scope='conv2')
    flat = tf.reshape(conv2, [-1, 576])
    fc1 = layers.masked_fully_connected(flat, 32, scope='fc1')
    return layers.masked_fully_connected(fc1, 24, scope='fc2')


def _contrib_layer_ops():
    meta_graph = v1.MetaGraphDef()
    meta_graph.ParseFromString(
        (FIXTURE / 'model.ckpt-45.meta').read_bytes())
    return sorted((node.name, node.op) for node in meta_graph.graph_def.node
                  if node.name.startswith(('conv', 'fc'))
                  and node.op in _LAYER_OP_TYPES)


def _softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_layers_rebuild_contribs_checkpoint_graph_and_outputs():
    reader = tf.train.load_checkpoint(str(FIXTURE))
    with tf.Graph().as_default() as graph:
        images = v1.placeholder(tf.float32, [None, 12, 12, 3])
        fc2 = _fixture_model(images)
        ours = sorted((op.name, op.type) for op in graph.get_operations()
                      if op.type in _LAYER_OP_TYPES)
        variables = v1.global_variables()
        assert {v.op.name: v.shape.as_list() for v in variables} == {
            name: reader.get_variable_to_shape_map()[name]
            for name in reader.get_variable_to_shape_map()
            if name.startswith(('conv', 'fc'))}
        assert ours == _contrib_layer_ops()
        saver = v1.train.Saver({v.op.name: v for v in variables})
        with v1.Session(graph=graph) as session:
            saver.restore(session, str(FIXTURE / 'model.ckpt-45'))
            hidden = session.run(fc2, {images: np.load(FIXTURE / 'input.npy')})
    weights = (reader.get_tensor('softmax_linear/weights')
               * reader.get_tensor('softmax_linear/mask'))
    logits = hidden @ weights + reader.get_tensor('softmax_linear/biases')
    np.testing.assert_allclose(_softmax(logits),
                               np.load(FIXTURE / 'expected_output.npy'),
                               rtol=1e-5, atol=1e-6)


def test_functions_name_scopes_and_collect_variables_as_slim_did():
    with tf.Graph().as_default():
        images = tf.ones((2, 5, 5, 3))
        layers.masked_conv2d(images, 4, 3)
        layers.masked_conv2d(images, 4, 3, variables_collections=['convs'])
        layers.masked_fully_connected(
            tf.ones((2, 3)), 2, variables_collections={'biases': ['b']},
            outputs_collections=['outputs'])
        per_layer = ('mask', 'weights', 'threshold', 'biases')
        assert _collection_names(v1.GraphKeys.MODEL_VARIABLES) == [
            f'Conv/{n}:0' for n in per_layer] + [
            f'Conv_1/{n}:0' for n in per_layer] + [
            f'fully_connected/{n}:0'
            for n in ('weights', 'mask', 'threshold', 'biases')]
        assert _collection_names(v1.GraphKeys.TRAINABLE_VARIABLES) == [
            'Conv/weights:0', 'Conv/biases:0', 'Conv_1/weights:0',
            'Conv_1/biases:0', 'fully_connected/weights:0',
            'fully_connected/biases:0']
        assert _collection_names(core_layers.MASKED_WEIGHT_COLLECTION) == [
            'Conv/weights/masked_weight:0', 'Conv_1/weights/masked_weight:0',
            'fully_connected/weights/masked_weight:0']
        assert _collection_names('convs') == ['Conv_1/weights:0',
                                              'Conv_1/biases:0']
        assert _collection_names('b') == ['fully_connected/biases:0']
        [output] = v1.get_collection('outputs')
        assert output.op.type == 'Relu'
        assert output.aliases == ['fully_connected']


def test_reuse_shares_the_variables_and_adds_no_second_mask():
    with tf.Graph().as_default():
        inputs = tf.ones((2, 3))
        layers.masked_fully_connected(inputs, 4, scope='fc',
                                      weights_regularizer=tf.nn.l2_loss)
        layers.masked_fully_connected(inputs, 4, scope='fc', reuse=True,
                                      weights_regularizer=tf.nn.l2_loss)
        assert len(v1.global_variables()) == 4
        assert _collection_names(core_layers.MASK_COLLECTION) == [
            'fc/mask:0']
        assert _collection_names(core_layers.WEIGHT_COLLECTION) == [
            'fc/weights:0']
        assert len(v1.get_collection(
            v1.GraphKeys.REGULARIZATION_LOSSES)) == 1


def test_layer_classes_scope_variables_as_tf1_layers_did():
    with tf.Graph().as_default():
        images = tf.ones((2, 5, 5, 3))
        first = core_layers.MaskedConv2D(4, 3,
                                         kernel_regularizer=tf.nn.l2_loss)
        second = core_layers.MaskedConv2D(4, 3, use_bias=False,
                                          trainable=False)
        first(images)
        first(images)
        second(images)
        shared = core_layers.MaskedConv2D(4, 3, name='masked_conv2d',
                                          reuse=True)
        shared(images)
        assert (first.scope_name, second.scope_name) == (
            'masked_conv2d', 'masked_conv2d_1')
        assert [v.name for v in first.variables] == [
            'masked_conv2d/mask:0', 'masked_conv2d/kernel:0',
            'masked_conv2d/threshold:0', 'masked_conv2d/bias:0']
        assert first.trainable_variables == [first.kernel, first.bias]
        assert second.trainable_variables == [] and second.bias is None
        assert shared.kernel is first.kernel
        assert len(v1.global_variables()) == 7
        assert len(v1.get_collection(core_layers.MASK_COLLECTION)) == 2
        assert len(v1.get_collection(
            v1.GraphKeys.REGULARIZATION_LOSSES)) == 1
        assert first.masked_kernel.name == (
            'masked_conv2d/weights/masked_weight:0')


def test_masked_lstm_cell_with_a_projection_masks_only_its_kernel():
    with tf.Graph().as_default() as graph:
        cell = rnn_cells.MultiRNNCell([
            rnn_cells.MaskedLSTMCell(8, num_proj=4, use_peepholes=True),
            rnn_cells.MaskedBasicLSTMCell(6, state_is_tuple=True)])
        outputs, _ = v1.nn.dynamic_rnn(cell, tf.ones((2, 3, 5)),
                                       dtype=tf.float32)
        masks = v1.get_collection(core_layers.MASK_COLLECTION)
        weights = v1.get_collection(core_layers.WEIGHT_COLLECTION)
        assert [m.shape.as_list() for m in masks] == [[9, 32], [10, 24]]
        assert [w.shape.as_list() for w in weights] == [[9, 32], [10, 24]]
        assert 'projection' not in ' '.join(w.name for w in weights)
        masked = v1.get_collection(core_layers.MASKED_WEIGHT_COLLECTION)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            session.run(v1.assign(masks[0], tf.zeros_like(masks[0])))
            # Built inside dynamic_rnn's loop, the masked weights are still
            # tensors of the graph itself, so they can be fetched.
            masked_values, kernel, output = session.run(
                [masked, weights[1], outputs])
        assert not masked_values[0].any()
        np.testing.assert_array_equal(masked_values[1], kernel)
        assert output.shape == (2, 3, 6)


def test_masked_entries_get_no_gradient():
    with tf.Graph().as_default() as graph:
        outputs = layers.masked_fully_connected(tf.ones((2, 3)), 2,
                                                activation_fn=None)
        [mask] = v1.get_collection(core_layers.MASK_COLLECTION)
        [weight] = v1.get_collection(core_layers.WEIGHT_COLLECTION)
        [gradient] = tf.gradients(tf.reduce_sum(outputs), [weight])
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            session.run(v1.assign(mask, [[1., 0.], [0., 1.], [1., 1.]]))
            value = session.run(gradient)
    np.testing.assert_array_equal(value, [[2., 0.], [0., 2.], [2., 2.]])

