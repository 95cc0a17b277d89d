"""One worker of a 2-worker MultiWorkerMirroredStrategy run on localhost.

`python -m tests.helpers.multi_worker INDEX PORT0 PORT1 MODE OUT.npz`, with
MODE `loop` (a custom training loop: `strategy.run` for the step, then the
controller's conditional update in cross-replica context), `fit` (Keras's
own `fit` of the pruned model with PruningCallback) or `fit_dense` (`fit` of
the same model unpruned; both fail under this strategy:
keras-team/keras#20585). Saves the worker's masks and the all-reduce op
counts of the pruned and the dense step functions to OUT.npz, or the error
`fit` raised.
"""

import json
import os
import sys

INDEX, PORT0, PORT1, MODE, OUT = sys.argv[1:6]
os.environ['TF_CONFIG'] = json.dumps({
    'cluster': {'worker': [f'localhost:{PORT0}', f'localhost:{PORT1}']},
    'task': {'type': 'worker', 'index': int(INDEX)}})

import keras  # noqa: E402  (TF_CONFIG must be set first)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_prune  # noqa: E402

SPEC = 'pruning_frequency=2,begin_pruning_step=0,sparsity_function_end_step=6,target_sparsity=0.75'
STEPS = 8
GLOBAL_BATCH = 16


def _model():
    inputs = keras.Input((10,))
    x = keras.layers.Dense(32, activation='relu', name='fc1')(inputs)
    return keras.Model(inputs, keras.layers.Dense(4, name='fc2')(x))


def _dataset():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * GLOBAL_BATCH, 10)).astype(np.float32)
    y = rng.normal(size=(STEPS * GLOBAL_BATCH, 4)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)


def _all_reduce_ops(function, *args):
    """Collective reduce ops in a traced function and the functions it calls."""
    graph = function.get_concrete_function(*args).graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function
                                for n in f.node_def]
    return sum(1 for n in nodes if 'CollectiveReduce' in n.op
               or 'AllReduce' in n.op)


def _step_function(strategy, model, optimizer):
    @tf.function
    def step(inputs):
        def replica_step(batch):
            x, y = batch
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(model(x, training=True) - y))
                loss = loss / GLOBAL_BATCH
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        return strategy.reduce('SUM', strategy.run(replica_step, (inputs,)),
                               axis=None)
    return step


def run_loop(strategy):
    with strategy.scope():
        model = tf_prune.prune(_model(), SPEC)
        optimizer = keras.optimizers.SGD(0.05)
        dense = _model()
        dense_optimizer = keras.optimizers.SGD(0.05)
    pruning = tf_prune.Pruning(SPEC, model)
    step = _step_function(strategy, model, optimizer)
    batches = iter(strategy.experimental_distribute_dataset(_dataset()))
    for _ in range(STEPS):
        batch = next(batches)
        step(batch)
        pruning.conditional_mask_update(optimizer.iterations)
    dense_step = _step_function(strategy, dense, dense_optimizer)
    result = {
        'all_reduce_pruned': _all_reduce_ops(step, batch),
        'all_reduce_dense': _all_reduce_ops(dense_step, batch),
        'iterations': int(optimizer.iterations.numpy()),
    }
    for p in pruning.get_masks():
        copies = [v.numpy() for v in p.value.values]
        assert all(np.array_equal(copies[0], c) for c in copies)
        result[p.path] = copies[0]
    for p in pruning.get_weights():
        result[p.path] = p.numpy()
    np.savez(OUT, **result)


def run_fit(strategy, pruned):
    with strategy.scope():
        model = tf_prune.prune(_model(), SPEC) if pruned else _model()
        model.compile(keras.optimizers.SGD(0.05), 'mse')
    callbacks = [tf_prune.PruningCallback(SPEC)] if pruned else []
    try:
        model.fit(_dataset(), epochs=1, verbose=0, callbacks=callbacks)
        np.savez(OUT, error='')
    except Exception as e:  # noqa: BLE001  (the failure is what is recorded)
        np.savez(OUT, error=f'{type(e).__name__}: {e}'.splitlines()[0])


if __name__ == '__main__':
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    if MODE == 'loop':
        run_loop(strategy)
    else:
        run_fit(strategy, pruned=MODE == 'fit')
