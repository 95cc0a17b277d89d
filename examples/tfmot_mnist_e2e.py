# Copyright 2020 The TensorFlow Authors. All Rights Reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
# ==============================================================================
# tf_prune: tfmot 0.8.1's
# tensorflow_model_optimization/python/examples/sparsity/keras/mnist/mnist_e2e.py
# on Keras 3 through `from tf_prune import tfmot`, changed where marked
# "tf_prune:" and nowhere else (tests/examples/test_tfmot_examples.py checks
# that undoing these changes gives tfmot's file back, byte for byte):
# - imports: tfmot's internal modules `prune`, `pruning_callbacks` and
#   `pruning_schedule` are names for `tfmot.sparsity.keras`, which holds what
#   this file uses of them; Keras is `keras` 3, not tfmot's tf_keras `compat`;
#   tfmot's `test_utils` is `tfmot_support` (beside this file): the same
#   functions on Fashion-MNIST from Debian's dataset-fashion-mnist files
#   (tfmot downloads MNIST), TFLite files run by LiteRT's builtin kernels
#   (`ai_edge_litert`, which TF 2.21 asks for in place of
#   `tf.lite.Interpreter`, whose default XNNPACK delegate miscomputes the
#   1x16 file);
# - flags to shorten a run: --epochs, --frequency (defaults: the file's
#   values) and, from tfmot_support, --train_examples, --test_examples,
#   --data_dir; --output_dir for the files tfmot writes to /tmp.
# The TFLite conversion is tfmot's, unchanged: TF 2.21's converter takes
# Keras 3 models.
# Run: .venv/bin/python examples/tfmot_mnist_e2e.py --sparsity=0.75
# pylint: disable=missing-docstring,protected-access
"""Train a simple convnet on the MNIST dataset."""
from __future__ import print_function

import os  # tf_prune: for --output_dir

from absl import app as absl_app
from absl import flags
import tensorflow as tf

# tf_prune: tfmot's modules, as names for the API that holds their functions.
import keras
from tf_prune import tfmot
import tfmot_support as keras_test_utils

prune = tfmot.sparsity.keras
pruning_callbacks = tfmot.sparsity.keras
pruning_schedule = tfmot.sparsity.keras


ConstantSparsity = pruning_schedule.ConstantSparsity
l = keras.layers

FLAGS = flags.FLAGS

batch_size = 128
num_classes = 10
epochs = 1

flags.DEFINE_float('sparsity', '0.0', 'Target sparsity level.')
# tf_prune: flags to shorten a run (the defaults are the file's values), and
# the directory of the files tfmot writes to /tmp.
flags.DEFINE_integer('epochs', epochs, 'Training epochs of each model')
flags.DEFINE_integer('frequency', 100, "ConstantSparsity's frequency")
flags.DEFINE_string('output_dir', '/tmp', 'Where the logs and models go')


def build_layerwise_model(input_shape, **pruning_params):
  return keras.Sequential([
      l.Conv2D(
          32, 5, padding='same', activation='relu', input_shape=input_shape
      ),
      l.MaxPooling2D((2, 2), (2, 2), padding='same'),
      l.Conv2D(64, 5, padding='same'),
      l.BatchNormalization(),
      l.ReLU(),
      l.MaxPooling2D((2, 2), (2, 2), padding='same'),
      l.Flatten(),
      prune.prune_low_magnitude(
          l.Dense(1024, activation='relu'), **pruning_params
      ),
      l.Dropout(0.4),
      prune.prune_low_magnitude(
          l.Dense(num_classes, activation='softmax'), **pruning_params
      ),
  ])


def train(model, x_train, y_train, x_test, y_test):
  model.compile(
      loss=keras.losses.categorical_crossentropy,
      optimizer='adam',
      metrics=['accuracy'],
  )

  # Print the model summary.
  model.summary()

  # Add a pruning step callback to peg the pruning step to the optimizer's
  # step. Also add a callback to add pruning summaries to tensorboard
  callbacks = [
      pruning_callbacks.UpdatePruningStep(),
      pruning_callbacks.PruningSummaries(  # tf_prune: was '/tmp/logs'
          log_dir=os.path.join(FLAGS.output_dir, 'logs'))
  ]

  model.fit(
      x_train,
      y_train,
      batch_size=batch_size,
      epochs=FLAGS.epochs,  # tf_prune: was epochs
      verbose=1,
      callbacks=callbacks,
      validation_data=(x_test, y_test))
  score = model.evaluate(x_test, y_test, verbose=0)
  print('Test loss:', score[0])
  print('Test accuracy:', score[1])

  model = prune.strip_pruning(model)
  return model


def main(unused_argv):
  ##############################################################################
  # Prepare training and testing data
  ##############################################################################
  (x_train, y_train), (
      x_test,
      y_test), input_shape = keras_test_utils.get_preprocessed_mnist_data()

  ##############################################################################
  # Train and convert a model with 2x2 block config. There's no kernel in tflite
  # supporting this block configuration, so the sparse tensor is densified and
  # the model falls back to dense execution.
  ##############################################################################
  pruning_params = {
      'pruning_schedule':
          ConstantSparsity(FLAGS.sparsity, begin_step=0,
                           frequency=FLAGS.frequency),  # tf_prune: was 100
      'block_size': (2, 2)
  }

  model = build_layerwise_model(input_shape, **pruning_params)
  model = train(model, x_train, y_train, x_test, y_test)

  converter = tf.lite.TFLiteConverter.from_keras_model(model)

  # Get a dense model as baseline
  tflite_model_dense = converter.convert()
  # tf_prune: in --output_dir; was '/tmp/dense_mnist.tflite'.
  tflite_model_path = os.path.join(FLAGS.output_dir, 'dense_mnist.tflite')
  with open(tflite_model_path, 'wb') as f:
    f.write(tflite_model_dense)

  # Enable sparse tensor encoding, otherwise the model is converted as dense.
  converter.optimizations = {tf.lite.Optimize.EXPERIMENTAL_SPARSITY}

  tflite_model = converter.convert()

  # Check the model is compressed
  print('Compression ratio: ', len(tflite_model) / len(tflite_model_dense))

  tflite_model_path = os.path.join(  # tf_prune: in --output_dir, was /tmp
      FLAGS.output_dir, 'sparse_mnist_%s_2x2.tflite' % FLAGS.sparsity)
  with open(tflite_model_path, 'wb') as f:
    f.write(tflite_model)

  print('evaluate 2x2 model')
  print(keras_test_utils.eval_mnist_tflite(model_content=tflite_model))

  ##############################################################################
  # Train and convert a model with 1x4 block config. There's kernel in tflite
  # with this block configuration, so the model can take advantage of sparse
  # execution and see inference speed-up.
  ##############################################################################
  pruning_params = {
      'pruning_schedule':
          ConstantSparsity(FLAGS.sparsity, begin_step=0,
                           frequency=FLAGS.frequency),  # tf_prune: was 100
      # TFLite transposes the weight during conversion, so we need to specify
      # the block as (4, 1) in the training API.
      'block_size': (4, 1)
  }

  model = build_layerwise_model(input_shape, **pruning_params)
  model = train(model, x_train, y_train, x_test, y_test)

  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.optimizations = {tf.lite.Optimize.EXPERIMENTAL_SPARSITY}

  tflite_model = converter.convert()
  # Check the model is compressed
  print('Compression ratio: ', len(tflite_model) / len(tflite_model_dense))

  tflite_model_path = os.path.join(  # tf_prune: in --output_dir, was /tmp
      FLAGS.output_dir, 'sparse_mnist_%s_1x4.tflite' % FLAGS.sparsity)
  with open(tflite_model_path, 'wb') as f:
    f.write(tflite_model)

  print('evaluate 1x4 model')
  print(keras_test_utils.eval_mnist_tflite(model_content=tflite_model))

  ##############################################################################
  # Train and convert a model with 1x16 block config, and enable post-training
  # dynamic range quantization during conversion.
  ##############################################################################
  pruning_params = {
      'pruning_schedule':
          ConstantSparsity(FLAGS.sparsity, begin_step=0,
                           frequency=FLAGS.frequency),  # tf_prune: was 100
      # TFLite transposes the weight during conversion, so we need to specify
      # the block as (16, 1) in the training API.
      'block_size': (16, 1)
  }

  model = build_layerwise_model(input_shape, **pruning_params)
  model = train(model, x_train, y_train, x_test, y_test)

  converter = tf.lite.TFLiteConverter.from_keras_model(model)
  converter.optimizations = {
      tf.lite.Optimize.DEFAULT, tf.lite.Optimize.EXPERIMENTAL_SPARSITY
  }

  tflite_model = converter.convert()
  # Check the model is compressed
  print('Compression ratio: ', len(tflite_model) / len(tflite_model_dense))

  tflite_model_path = os.path.join(  # tf_prune: in --output_dir, was /tmp
      FLAGS.output_dir, 'sparse_mnist_%s_1x16.tflite' % FLAGS.sparsity)
  with open(tflite_model_path, 'wb') as f:
    f.write(tflite_model)

  print('evaluate 1x16 model')
  print(keras_test_utils.eval_mnist_tflite(model_content=tflite_model))


if __name__ == '__main__':
  absl_app.run(main)
