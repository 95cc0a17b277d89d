"""contrib-shaped TF1 training checkpoints, for the strip tests.

contrib's masked layers keep a `mask` and a `threshold` beside each pruned
weight and compute `<scope>/<weight>/masked_weight = mask * weight`, which
the layer then uses. contrib is gone from TF 2, so these builders make the
same variables and nodes with `tf.compat.v1`, for the three models of
contrib's `strip_pruning_vars_test` (conv, fully connected, a two-layer
LSTM run by `static_rnn`), optionally with partitioned weights and masks.
"""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1

INPUT = 'inputs'
OUTPUT = 'outputs'


def _masked_weight(name, shape, partitions):
    """contrib's apply_mask: mask, threshold and the masked-weight node."""
    partitioner = (v1.fixed_size_partitioner(partitions) if partitions
                   else None)
    weight = v1.get_variable(name, shape, partitioner=partitioner)
    mask = v1.get_variable('mask', shape, initializer=v1.ones_initializer(),
                           trainable=False, partitioner=partitioner)
    v1.get_variable('threshold', [], initializer=v1.zeros_initializer(),
                    trainable=False)
    scope = v1.get_variable_scope().name
    with tf.name_scope(f'{scope}/{name}/'):
        return tf.multiply(mask, weight, name='masked_weight')


def conv_model(inputs, partitions):
    """Five 3x3 convolutions of 4 + 7(i+1) filters (scopes `Conv_i`)."""
    x = inputs
    with v1.variable_scope('conv_model'):
        for i in range(5):
            with v1.variable_scope(f'Conv_{i}'):
                kernel = _masked_weight(
                    'weights', [3, 3, x.shape[-1], 4 + 7 * (i + 1)],
                    partitions)
                x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, 'SAME'))
    return x


def fc_model(inputs, partitions):
    """Three fully connected layers of 4 + 7(i+1) units."""
    x = inputs
    with v1.variable_scope('fc_model'):
        for i in range(3):
            with v1.variable_scope(f'fully_connected_{i}'):
                weights = _masked_weight(
                    'weights', [x.shape[-1], 4 + 7 * (i + 1)], partitions)
                biases = v1.get_variable('biases', [4 + 7 * (i + 1)])
                x = tf.nn.relu(tf.matmul(x, weights) + biases)
    return x


def lstm_model(inputs, partitions, steps=3, units=10):
    """Two masked basic LSTM cells (forget bias 0), unrolled over `steps`.

    As `MultiRNNCell([MaskedBasicLSTMCell(10)] * 2)` under `static_rnn`: the
    masked kernel is computed once and read at every step.
    """
    batch = tf.shape(inputs)[0]
    layer_inputs = [inputs] * steps
    with v1.variable_scope('rnn/multi_rnn_cell'):
        for layer in range(2):
            with v1.variable_scope(f'cell_{layer}/basic_lstm_cell'):
                depth = layer_inputs[0].shape[-1] + units
                kernel = _masked_weight('kernel', [depth, 4 * units],
                                        partitions)
                bias = v1.get_variable('bias', [4 * units],
                                       initializer=v1.zeros_initializer())
            c = h = tf.zeros([batch, units])
            outputs = []
            for x in layer_inputs:
                gates = tf.matmul(tf.concat([x, h], 1), kernel) + bias
                i, j, f, o = tf.split(gates, 4, axis=1)
                c = c * tf.sigmoid(f) + tf.sigmoid(i) * tf.tanh(j)
                h = tf.tanh(c) * tf.sigmoid(o)
                outputs.append(h)
            layer_inputs = outputs
    return layer_inputs[-1]


MODELS = {
    'conv': (conv_model, (8, 7, 9, 4)),
    'fc': (fc_model, (8, 4)),
    'lstm': (lstm_model, (8, 10)),
}


def write_checkpoint(directory, kind, partitions=0, seed=0):
    """Trains nothing: builds a model, sets random half-zero masks, saves.

    Args:
      directory: where the checkpoint and its `.meta` graph go.
      kind: a key of MODELS.
      partitions: split each weight and mask in this many parts (0: none).
      seed: for the weights, masks and input.

    Returns:
      `(input batch, the graph's output for it, number of masks)`.
    """
    build, shape = MODELS[kind]
    rng = np.random.default_rng(seed)
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(seed)
        inputs = v1.placeholder(tf.float32, (None,) + shape[1:], name=INPUT)
        outputs = tf.identity(build(inputs, partitions), name=OUTPUT)
        step = v1.train.get_or_create_global_step()
        masks = [v for v in v1.global_variables()
                 if '/mask' in v.name]
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            for mask in masks:
                shape_ = mask.shape.as_list()
                session.run(mask.assign(
                    (rng.random(shape_) >= 0.5).astype(np.float32)))
            session.run(step.assign(20))
            batch = rng.standard_normal(shape).astype(np.float32)
            expected = session.run(outputs, {inputs: batch})
            v1.train.Saver().save(session, f'{directory}/model.ckpt',
                                  global_step=step)
    mask_count = len({m.name.split('/part_')[0] for m in masks})
    return batch, expected, mask_count
