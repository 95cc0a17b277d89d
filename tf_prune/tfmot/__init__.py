"""tfmot 0.8.1's pruning API on Keras 3: `from tf_prune import tfmot`.

A tfmot user changes `import tensorflow_model_optimization as tfmot` to
`from tf_prune import tfmot`; `tfmot.sparsity.keras.prune_low_magnitude`
and the rest then prune Keras 3 models with tfmot's schedules, masks and
callbacks. Importing it changes no global setting (tfmot itself switches
the process to tf_keras). Only pruning is provided: tfmot's quantization
and clustering are not part of tf_prune.
"""

from tf_prune.tfmot import sparsity

__all__ = ['sparsity']

_NOT_PROVIDED = ('quantization', 'clustering')


def __getattr__(name):
    if name in _NOT_PROVIDED:
        raise AttributeError(
            f'tf_prune.tfmot provides tfmot.sparsity only; tfmot.{name} is '
            f'not part of tf_prune (keep tensorflow_model_optimization for '
            f'it, on tf_keras)')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
