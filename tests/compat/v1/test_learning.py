"""tf_prune.compat.v1.learning.train: slim's loop, with the mask update."""

import numpy as np
import pytest
import tensorflow as tf

from tf_prune.compat.v1 import layers
from tf_prune.compat.v1 import learning
from tf_prune.compat.v1 import pruning

v1 = tf.compat.v1
SPEC = 'name=p,target_sparsity=0.5,pruning_frequency=2,sparsity_function_end_step=4'


def _training_graph():
    """A one-layer regression whose masks reach 0.5 at step 4."""
    global_step = v1.train.get_or_create_global_step()
    inputs = tf.constant(np.random.default_rng(0).normal(size=(8, 6)),
                         tf.float32)
    outputs = layers.masked_fully_connected(inputs, 4, activation_fn=None,
                                            scope='fc')
    loss = tf.reduce_mean(tf.square(outputs - 1.0))
    minimize = v1.train.GradientDescentOptimizer(0.1).minimize(
        loss, global_step=global_step)
    # slim's create_train_op: the loss, after the update.
    with tf.control_dependencies([minimize]):
        train_op = tf.identity(loss)
    p = pruning.Pruning(SPEC, global_step=global_step)
    return train_op, p.conditional_mask_update_op()


def test_train_runs_the_mask_update_after_each_step_and_saves(tmp_path):
    with tf.Graph().as_default():
        train_op, mask_update_op = _training_graph()
        loss = learning.train(train_op, str(tmp_path), mask_update_op,
                              number_of_steps=6, log_every_n_steps=3)
    assert np.isfinite(loss)
    prefix = tf.train.latest_checkpoint(str(tmp_path))
    assert prefix.endswith('-6')
    mask = tf.train.load_variable(prefix, 'fc/mask')
    assert float(np.mean(mask == 0)) == 0.5
    assert tf.train.load_variable(prefix, 'p/last_mask_update_step') == 6

    # Started again in the same directory, it resumes from step 6.
    with tf.Graph().as_default():
        train_op, mask_update_op = _training_graph()
        learning.train(train_op, str(tmp_path), mask_update_op,
                       number_of_steps=8)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith('-8')


@pytest.mark.parametrize('argument, value', [
    ('master', 'grpc://host:2222'),
    ('sync_optimizer', object()),
    ('startup_delay_steps', 3),
    ('trace_every_n_steps', 10),
    ('number_of_steps', 0),
])
def test_what_one_process_cannot_honour_is_refused(argument, value):
    with tf.Graph().as_default():
        train_op, mask_update_op = _training_graph()
        with pytest.raises(ValueError, match=argument):
            learning.train(train_op, None, mask_update_op, **{argument: value})
