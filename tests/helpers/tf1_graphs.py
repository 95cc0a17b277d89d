"""contrib's TF1 training checkpoints, for the strip tests.

The three models of contrib's `strip_pruning_vars_test` (conv, fully
connected, a two-layer LSTM run by `static_rnn`), built with contrib's own
API in `tf_prune.compat.v1`: each masked layer keeps a `mask` and a
`threshold` beside its weight and computes with
`<scope>/weights/masked_weight = mask * weight`. Optionally every variable
is partitioned, as a variable scope's partitioner does.
"""

import re

import numpy as np
import tensorflow as tf

from tf_prune.compat.v1 import layers
from tf_prune.compat.v1 import rnn_cells

v1 = tf.compat.v1

INPUT = 'inputs'
OUTPUT = 'outputs'


def _partitioned(partitions):
    """A variable scope splitting the variables of rank >= 1 in parts."""
    def partitioner(shape, dtype):
        # A scalar (a threshold) cannot be split.
        if shape.ndims == 0:
            return []
        return v1.fixed_size_partitioner(partitions)(shape, dtype=dtype)
    return v1.variable_scope(v1.get_variable_scope(),
                             partitioner=partitioner if partitions else None)


def conv_model(inputs, partitions):
    """Five 3x3 convolutions of 4 + 7(i+1) filters (scopes `Conv_i`)."""
    x = inputs
    with _partitioned(partitions), v1.variable_scope('conv_model'):
        for i in range(5):
            x = layers.masked_conv2d(x, 4 + 7 * (i + 1), 3,
                                     scope=f'Conv_{i}')
    return x


def fc_model(inputs, partitions):
    """Three fully connected layers of 4 + 7(i+1) units."""
    x = inputs
    with _partitioned(partitions), v1.variable_scope('fc_model'):
        for i in range(3):
            x = layers.masked_fully_connected(
                x, 4 + 7 * (i + 1), scope=f'fully_connected_{i}')
    return x


def lstm_model(inputs, partitions, steps=3, units=10):
    """Two masked basic LSTM cells (forget bias 0) under `static_rnn`."""
    with _partitioned(partitions):
        cell = rnn_cells.MultiRNNCell([
            rnn_cells.MaskedBasicLSTMCell(units, forget_bias=0.0)
            for _ in range(2)])
        outputs, _ = v1.nn.static_rnn(cell, [inputs] * steps,
                                      dtype=tf.float32)
    return outputs[-1]


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
                 if re.search(r'/mask(/part_\d+)?:0$', v.name)]
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
