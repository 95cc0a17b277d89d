"""The tfmot facade's `fit` under MirroredStrategy over 2 logical CPUs.

`python -m tests.helpers.tfmot_mirrored_fit OUT.npz`: trains the same model
with the same data once under the strategy and once on one device, and
saves each replica's masks and kernels, the step counts, and the
one-device masks.
"""

import sys

import tensorflow as tf

CPU = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tf_prune import tfmot  # noqa: E402

sparsity = tfmot.sparsity.keras


def _train(x, y, weights):
    model = sparsity.prune_low_magnitude(
        keras.Sequential([keras.Input((8,)),
                          keras.layers.Dense(16, activation='relu', name='a'),
                          keras.layers.Dense(4, name='b')]),
        pruning_schedule=sparsity.PolynomialDecay(0.2, 0.8, 0, 6,
                                                  frequency=2))
    model.set_weights(weights(model))
    model.compile(keras.optimizers.SGD(0.05), 'mse')
    model.fit(x, y, batch_size=16, epochs=2, verbose=0,
              callbacks=[sparsity.UpdatePruningStep()])
    return model


def main(out):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = rng.normal(size=(64, 4)).astype(np.float32)
    initial = []

    def weights(model):
        if not initial:
            initial.extend(w.numpy() for w in model.weights)
        return initial

    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    with strategy.scope():
        mirrored = _train(x, y, weights)
    alone = _train(x, y, weights)
    arrays = {}
    for wrapper, single in zip(mirrored.layers, alone.layers):
        (pruned,) = wrapper.pruned_weights
        for replica, (mask, kernel) in enumerate(zip(
                pruned.mask.value.values, pruned.weight.value.values)):
            arrays[f'{wrapper.name}/{replica}/mask'] = mask.numpy()
            arrays[f'{wrapper.name}/{replica}/kernel'] = kernel.numpy()
        arrays[f'{wrapper.name}/step'] = wrapper.pruning_step.numpy()
        arrays[f'{wrapper.name}/alone'] = single.pruned_weights[0].mask.numpy()
    np.savez(out, **arrays)


if __name__ == '__main__':
    main(*sys.argv[1:])
