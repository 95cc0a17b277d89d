# Copyright 2021 The TensorFlow Authors. All Rights Reserved.
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
# tf_prune: tfmot 0.8.1's tensorflow_model_optimization/python/examples/
# sparsity/keras/mnist/mnist_e2e_sparsity2x4.py on Keras 3 through
# `from tf_prune import tfmot`, changed where marked "tf_prune:" and nowhere
# else (tests/examples/test_tfmot_examples.py checks that undoing these
# changes gives tfmot's file back, byte for byte):
# - imports: tfmot's internal modules `prune`, `pruning_callbacks` and
#   `pruning_schedule` are names for `tfmot.sparsity.keras`, which holds what
#   this file uses of them; `pruning_wrapper` is the facade's module of
#   `PruneLowMagnitude`; Keras is `keras` 3, not tfmot's tf_keras `compat`;
#   tfmot's `test_utils` and `pruning_utils` are `tfmot_support` (beside this
#   file): the same functions on Fashion-MNIST from Debian's
#   dataset-fashion-mnist files (tfmot downloads MNIST), TFLite files run by
#   LiteRT's builtin kernels (`ai_edge_litert`, which TF 2.21 asks for in
#   place of `tf.lite.Interpreter`), and tfmot's `is_pruned_m_by_n`;
# - flags to shorten a run: --epochs (default: the file's value) and, from
#   tfmot_support, --train_examples, --test_examples, --data_dir;
#   --output_dir for the files tfmot writes to /tmp.
# The TFLite conversion is tfmot's, unchanged: TF 2.21's converter takes
# Keras 3 models.
# Run: .venv/bin/python examples/tfmot_mnist_e2e_sparsity2x4.py
# pylint: disable=missing-docstring,protected-access
"""Train a simple convnet on the MNIST dataset with sparsity 2x4.

  It is based on mnist_e2e.py
"""
from __future__ import print_function

import os  # tf_prune: for --output_dir

from absl import app as absl_app
from absl import flags  # tf_prune: for the flags below
import tensorflow as tf

# tf_prune: tfmot's modules, as names for the API that holds their functions.
import keras
from tf_prune import tfmot
from tf_prune.tfmot import wrapper as pruning_wrapper
import tfmot_support as keras_test_utils
import tfmot_support as pruning_utils

prune = tfmot.sparsity.keras
pruning_callbacks = tfmot.sparsity.keras
pruning_schedule = tfmot.sparsity.keras


ConstantSparsity = pruning_schedule.ConstantSparsity
l = keras.layers

tf.random.set_seed(42)

batch_size = 128
num_classes = 10
epochs = 1

# tf_prune: a flag to shorten a run (the default is the file's value), and
# the directory of the files tfmot writes to /tmp.
FLAGS = flags.FLAGS
flags.DEFINE_integer('epochs', epochs, 'Training epochs')
flags.DEFINE_string('output_dir', '/tmp', 'Where the logs and model go')

PRUNABLE_2x4_LAYERS = (keras.layers.Conv2D, keras.layers.Dense)


def check_model_sparsity_2x4(model):
  for layer in model.layers:
    if isinstance(layer, pruning_wrapper.PruneLowMagnitude) and isinstance(
        layer.layer, PRUNABLE_2x4_LAYERS):
      for weight in layer.layer.get_prunable_weights():
        if not pruning_utils.is_pruned_m_by_n(weight):
          return False
  return True


def build_layerwise_model(input_shape, **pruning_params):
  return keras.Sequential([
      prune.prune_low_magnitude(
          l.Conv2D(
              32, 5, padding='same', activation='relu', input_shape=input_shape
          ),
          **pruning_params
      ),
      l.MaxPooling2D((2, 2), (2, 2), padding='same'),
      prune.prune_low_magnitude(
          l.Conv2D(64, 5, padding='same'), **pruning_params
      ),
      l.BatchNormalization(),
      l.ReLU(),
      l.MaxPooling2D((2, 2), (2, 2), padding='same'),
      l.Flatten(),
      prune.prune_low_magnitude(
          l.Dense(1024, activation='relu'), **pruning_params
      ),
      l.Dropout(0.4),
      l.Dense(num_classes, activation='softmax'),
  ])


def train(model, x_train, y_train, x_test, y_test):
  model.compile(
      loss=keras.losses.categorical_crossentropy,
      optimizer='adam',
      metrics=['accuracy'],
  )
  model.run_eagerly = True

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

  # Check sparsity 2x4 type before stripping pruning
  is_pruned_2x4 = check_model_sparsity_2x4(model)
  print('Pass the check for sparsity 2x4: ', is_pruned_2x4)

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
  # Train a model with sparsity 2x4.
  ##############################################################################
  pruning_params = {
      'pruning_schedule': ConstantSparsity(0.5, begin_step=0, frequency=100),
      'sparsity_m_by_n': (2, 4),
  }

  model = build_layerwise_model(input_shape, **pruning_params)
  pruned_model = train(model, x_train, y_train, x_test, y_test)

  # Write a model that has been pruned with 2x4 sparsity.
  converter = tf.lite.TFLiteConverter.from_keras_model(pruned_model)
  tflite_model = converter.convert()

  # tf_prune: in --output_dir; was '/tmp/mnist_2x4.tflite'.
  tflite_model_path = os.path.join(FLAGS.output_dir, 'mnist_2x4.tflite')
  print('model is saved to {}'.format(tflite_model_path))
  with open(tflite_model_path, 'wb') as f:
    f.write(tflite_model)

  print('evaluate pruned model: ')
  print(keras_test_utils.eval_mnist_tflite(model_content=tflite_model))
  # the accuracy of 2:4 pruning model is 0.9866
  # the accuracy of unstructured model with 50% is 0.9863


if __name__ == '__main__':
  absl_app.run(main)
