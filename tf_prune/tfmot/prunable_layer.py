"""`PrunableLayer`: the interface of a custom layer the facade can prune."""

import abc


class PrunableLayer(abc.ABC):
    """A custom Keras layer that says which of its weights to prune.

    Subclass it beside `keras.layers.Layer` and implement
    `get_prunable_weights()`; `prune_low_magnitude` then wraps the layer and
    prunes exactly those weights. (Any layer with a `get_prunable_weights`
    method is treated alike, as in tfmot.)
    """

    @abc.abstractmethod
    def get_prunable_weights(self):
        """The layer's weight variables to prune.

        Returns:
          A list of the layer's variables.
        """
        raise NotImplementedError('Must be implemented in subclasses.')
