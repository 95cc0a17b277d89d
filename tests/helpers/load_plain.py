"""Runs exported files with plain TensorFlow, Keras and LiteRT, no tf_prune.

Usage: python -m tests.helpers.load_plain BATCH.npy FILE...
Writes each file's outputs for the batch to FILE.out.npy; fails if
anything imported tf_prune.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from ai_edge_litert.interpreter import Interpreter  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _graph_def(path, batch):
    graph_def = tf.compat.v1.GraphDef()
    with open(path, 'rb') as file:
        graph_def.ParseFromString(file.read())
    read = {name.split(':')[0].lstrip('^')
            for node in graph_def.node for name in node.input}
    (placeholder,) = [n.name for n in graph_def.node if n.op == 'Placeholder']
    (output,) = [n.name for n in graph_def.node
                 if n.name not in read and n.op != 'Const']
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        tf.graph_util.import_graph_def(graph_def, name='')
        return session.run(f'{output}:0', {f'{placeholder}:0': batch})


def run_tflite(path, batch):
    """A TFLite file's first output for `batch`, resized to its batch.

    LiteRT runs it as a device would: with its default delegate (XNNPACK).
    """
    interpreter = Interpreter(model_path=str(path))
    entry = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(entry['index'], batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry['index'], batch)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]['index'])


def _saved_model(path, batch):
    serve = tf.saved_model.load(path).signatures['serving_default']
    (name,) = serve.structured_input_signature[1]
    (output,) = serve(**{name: tf.constant(batch)}).values()
    return output.numpy()


def _keras(path, batch):
    return keras.models.load_model(path)(batch).numpy()


def main(batch_path, *paths):
    batch = np.load(batch_path)
    for path in paths:
        if path.endswith('.pb'):
            outputs = _graph_def(path, batch)
        elif path.endswith('.tflite'):
            outputs = run_tflite(path, batch)
        elif path.endswith('.keras'):
            outputs = _keras(path, batch)
        else:
            outputs = _saved_model(path, batch)
        np.save(f'{path}.out.npy', outputs)
    loaded = [name for name in sys.modules if name.startswith('tf_prune')]
    if loaded:
        sys.exit(f'tf_prune was imported: {loaded}')


if __name__ == '__main__':
    main(*sys.argv[1:])
