"""`fit` with PruningCallback under MirroredStrategy over 2 logical CPUs.

`python -m tests.helpers.mirrored_fit OUT.npz [mixed_float16]`: saves each
mask as every replica holds it, the replica count and the final sparsity.
"""

import sys

import tensorflow as tf

CPU = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tf_prune  # noqa: E402

SPEC = ('pruning_frequency=2,begin_pruning_step=0,sparsity_function_end_step=8,'
        'target_sparsity=0.8')


def main(out, policy=None):
    if policy:
        keras.mixed_precision.set_global_policy(policy)
    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    with strategy.scope():
        inputs = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(4, 3, activation='relu', name='conv1')(inputs)
        x = keras.layers.Flatten()(x)
        outputs = keras.layers.Dense(3, name='fc', dtype='float32')(x)
        model = tf_prune.prune(keras.Model(inputs, outputs), SPEC)
        model.compile(keras.optimizers.SGD(0.05), 'mse')
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 8, 8, 1)).astype(np.float32)
    y = rng.normal(size=(160, 3)).astype(np.float32)
    callback = tf_prune.PruningCallback(SPEC)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0,
                        callbacks=[callback])
    result = {'replicas': strategy.num_replicas_in_sync,
              'sparsity': history.history['sparsity'][-1],
              'loss': history.history['loss'][-1]}
    for mask in callback.pruning.get_masks():
        result[mask.path] = np.stack([v.numpy() for v in mask.value.values])
        result[mask.path + ':dtype'] = mask.dtype
    np.savez(out, **result)


if __name__ == '__main__':
    main(*sys.argv[1:])
