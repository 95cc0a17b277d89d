# Copyright 2019 The TensorFlow Authors. All Rights Reserved.
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
# tensorflow_model_optimization/python/examples/sparsity/keras/mnist/mnist_cnn.py
# on Keras 3 through `from tf_prune import tfmot`, changed where marked
# "tf_prune:" and nowhere else (tests/examples/test_tfmot_examples.py checks
# that undoing these changes gives tfmot's file back, byte for byte):
# - imports: tfmot's internal modules `prune`, `pruning_callbacks` and
#   `pruning_schedule` are names for `tfmot.sparsity.keras`, which holds what
#   this file uses of them; Keras is `keras` 3, not tfmot's tf_keras `compat`;
#   `tfmot_support` (beside this file) reads the data and adds flags;
# - data: Fashion-MNIST from Debian's dataset-fashion-mnist files
#   (`tfmot_support.load_data`), where tfmot downloads MNIST;
# - flags to shorten a run: --epochs, --begin_step, --end_step, --frequency
#   (defaults: the file's values) and, from tfmot_support, --train_examples,
#   --test_examples, --data_dir;
# - saving: Keras 3 writes `.keras` files only (no `save_format='tf'`), in
#   --output_dir rather than a fixed /tmp/saved_model.
# Run: .venv/bin/python examples/tfmot_mnist_cnn.py --output_dir=/tmp/mnist_train
# pylint: disable=missing-docstring
"""Train a simple convnet on the MNIST dataset."""
from __future__ import print_function

import os  # tf_prune: for the saved model's path

from absl import app as absl_app
from absl import flags
import tensorflow as tf

# tf_prune: tfmot's modules, as names for the API that holds their functions.
import keras
from tf_prune import tfmot
import tfmot_support

prune = tfmot.sparsity.keras
pruning_callbacks = tfmot.sparsity.keras
pruning_schedule = tfmot.sparsity.keras


PolynomialDecay = pruning_schedule.PolynomialDecay
l = keras.layers

FLAGS = flags.FLAGS

batch_size = 128
num_classes = 10
epochs = 12

flags.DEFINE_string('output_dir', '/tmp/mnist_train/',
                    'Output directory to hold tensorboard events')
# tf_prune: flags to shorten a run; the defaults are the file's values.
flags.DEFINE_integer('epochs', epochs, 'Training epochs of each model')
flags.DEFINE_integer('begin_step', 1000, "PolynomialDecay's begin_step")
flags.DEFINE_integer('end_step', 5000, "PolynomialDecay's end_step")
flags.DEFINE_integer('frequency', 100, "PolynomialDecay's frequency")


def build_sequential_model(input_shape):
  return keras.Sequential([
      l.Conv2D(
          32, 5, padding='same', activation='relu', input_shape=input_shape
      ),
      l.MaxPooling2D((2, 2), (2, 2), padding='same'),
      l.BatchNormalization(),
      l.Conv2D(64, 5, padding='same', activation='relu'),
      l.MaxPooling2D((2, 2), (2, 2), padding='same'),
      l.Flatten(),
      l.Dense(1024, activation='relu'),
      l.Dropout(0.4),
      l.Dense(num_classes, activation='softmax'),
  ])


def build_functional_model(input_shape):
  inp = keras.Input(shape=input_shape)
  x = l.Conv2D(32, 5, padding='same', activation='relu')(inp)
  x = l.MaxPooling2D((2, 2), (2, 2), padding='same')(x)
  x = l.BatchNormalization()(x)
  x = l.Conv2D(64, 5, padding='same', activation='relu')(x)
  x = l.MaxPooling2D((2, 2), (2, 2), padding='same')(x)
  x = l.Flatten()(x)
  x = l.Dense(1024, activation='relu')(x)
  x = l.Dropout(0.4)(x)
  out = l.Dense(num_classes, activation='softmax')(x)

  return keras.models.Model([inp], [out])


def build_layerwise_model(input_shape, **pruning_params):
  return keras.Sequential([
      prune.prune_low_magnitude(
          l.Conv2D(32, 5, padding='same', activation='relu'),
          input_shape=input_shape,
          **pruning_params
      ),
      l.MaxPooling2D((2, 2), (2, 2), padding='same'),
      l.BatchNormalization(),
      prune.prune_low_magnitude(
          l.Conv2D(64, 5, padding='same', activation='relu'), **pruning_params
      ),
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


def train_and_save(models, x_train, y_train, x_test, y_test):
  for model in models:
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
        pruning_callbacks.PruningSummaries(log_dir=FLAGS.output_dir)
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

    # Export and import the model. Check that accuracy persists.
    # tf_prune: a .keras file (Keras 3's format) in --output_dir; tfmot wrote
    # a SavedModel to '/tmp/saved_model' with save_format='tf'.
    saved_model_dir = os.path.join(FLAGS.output_dir, 'saved_model.keras')
    print('Saving model to: ', saved_model_dir)
    keras.models.save_model(model, saved_model_dir)
    print('Loading model from: ', saved_model_dir)
    loaded_model = keras.models.load_model(saved_model_dir)

    score = loaded_model.evaluate(x_test, y_test, verbose=0)
    print('Test loss:', score[0])
    print('Test accuracy:', score[1])


def main(unused_argv):
  # input image dimensions
  img_rows, img_cols = 28, 28

  # the data, shuffled and split between train and test sets
  # tf_prune: Fashion-MNIST's files; was keras.datasets.mnist.load_data().
  (x_train, y_train), (x_test, y_test) = tfmot_support.load_data()

  if keras.backend.image_data_format() == 'channels_first':
    x_train = x_train.reshape(x_train.shape[0], 1, img_rows, img_cols)
    x_test = x_test.reshape(x_test.shape[0], 1, img_rows, img_cols)
    input_shape = (1, img_rows, img_cols)
  else:
    x_train = x_train.reshape(x_train.shape[0], img_rows, img_cols, 1)
    x_test = x_test.reshape(x_test.shape[0], img_rows, img_cols, 1)
    input_shape = (img_rows, img_cols, 1)

  x_train = x_train.astype('float32')
  x_test = x_test.astype('float32')
  x_train /= 255
  x_test /= 255
  print('x_train shape:', x_train.shape)
  print(x_train.shape[0], 'train samples')
  print(x_test.shape[0], 'test samples')

  # convert class vectors to binary class matrices
  y_train = keras.utils.to_categorical(y_train, num_classes)
  y_test = keras.utils.to_categorical(y_test, num_classes)

  pruning_params = {
      'pruning_schedule':
          PolynomialDecay(
              initial_sparsity=0.1,
              final_sparsity=0.75,
              begin_step=FLAGS.begin_step,  # tf_prune: flags, were
              end_step=FLAGS.end_step,  # 1000, 5000 and 100
              frequency=FLAGS.frequency)
  }

  layerwise_model = build_layerwise_model(input_shape, **pruning_params)
  sequential_model = build_sequential_model(input_shape)
  sequential_model = prune.prune_low_magnitude(
      sequential_model, **pruning_params)
  functional_model = build_functional_model(input_shape)
  functional_model = prune.prune_low_magnitude(
      functional_model, **pruning_params)

  models = [layerwise_model, sequential_model, functional_model]
  train_and_save(models, x_train, y_train, x_test, y_test)


if __name__ == '__main__':
  absl_app.run(main)
