"""Copies of graph models whose inputs keep their names."""

import keras


def clone_graph_model(model, clone_function, batch_shapes=None,
                      recursive=False):
    """`keras.models.clone_model` of a Sequential or Functional model, with
    new inputs named as the model's input layers.

    Given no input tensors, `clone_model` names a Functional model's new
    inputs after their tensors (`keras_tensor_12`) when the input layers were
    named automatically (`input_layer`), and exported signatures would take
    those names.

    Args:
      model: a built Sequential or Functional model.
      clone_function: called on each layer (and op) to get its copy.
      batch_shapes: a batch shape per input of `model`, or None for the
        inputs' own.
      recursive: also copy nested models with `clone_function`.

    Returns:
      The copy.
    """
    names = {id(layer.output): layer.name for layer in model.layers
             if isinstance(layer, keras.layers.InputLayer)}
    inputs = [keras.Input(batch_shape=(tuple(tensor.shape) if batch_shapes is None
                                       else batch_shapes[index]),
                          dtype=tensor.dtype,
                          name=names.get(id(tensor), tensor.name))
              for index, tensor in enumerate(model.inputs)]
    if isinstance(model, keras.Sequential):
        (inputs,) = inputs
    else:
        inputs = keras.tree.pack_sequence_as(model.input, inputs)
    return keras.models.clone_model(model, clone_function=clone_function,
                                    input_tensors=inputs, recursive=recursive)
