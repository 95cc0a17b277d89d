r"""contrib's cifar10_train.py wiring in TF 2: a GradientTape step, then the mask update.

contrib's training script built, in TF1:

    train_op = cifar10.train(loss, global_step)
    p = pruning.Pruning(pruning_hparams, global_step=global_step)
    with tf.control_dependencies([train_op]):
        mask_update_op = p.conditional_mask_update_op()
    p.add_pruning_summaries()

and ran `mask_update_op` every step. Here the same on Fashion-MNIST with
contrib's cifar10 layer names (conv1, conv2, local3, local4,
softmax_linear), so contrib's example spec applies unchanged, and
`--max_steps` as contrib's flag:

    python examples/custom_training_loop.py --train_dir=/tmp/cifar10_style \
        --pruning_hparams=name=cifar10_pruning,begin_pruning_step=200,target_sparsity=0.9,sparsity_function_end_step=1200,weight_sparsity_map=[conv1:0.9,conv2/kernel:0.8]

The optimizer increments the step; `conditional_mask_update` then runs with
the new step and writes contrib's summaries (and the "Pruning" dashboard
layout) to `--train_dir` at every update. `--train_dir` also holds
checkpoints: a second run continues from the last one, and
`tools/strip_pruning_vars.py --checkpoint_dir=<train_dir>` strips it.
TensorFlow's own logs and warnings show with `--verbose`.
"""

import os
import sys
import warnings

# TensorFlow reads its C++ log level when it is imported, before absl parses
# the flags: so a plain --verbose is looked for in sys.argv.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0' if '--verbose' in sys.argv else '2'

from absl import app, flags, logging  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tf_prune  # noqa: E402
from tf_prune import checkpoints  # noqa: E402

import support  # noqa: E402

tf_prune.flags.DEFINE_pruning_hparams(
    default='name=cifar10_pruning,begin_pruning_step=200,target_sparsity=0.9,'
            'sparsity_function_begin_step=200,sparsity_function_end_step=1200,'
            'weight_sparsity_map=[conv1:0.9,conv2/kernel:0.8]')
flags.DEFINE_string('train_dir', '/tmp/cifar10_style_train',
                    'Where summaries and checkpoints go')
flags.DEFINE_integer('max_steps', 1500, 'Number of batches to run')
flags.DEFINE_integer('batch_size', 128, 'Training batch size')
flags.DEFINE_integer('log_frequency', 100, 'Steps between progress lines')
flags.DEFINE_integer('checkpoint_frequency', 500, 'Steps between checkpoints')
flags.DEFINE_string('data_dir', support.DEFAULT_DATA_DIR,
                    'Directory of the Fashion-MNIST idx files')
flags.DEFINE_bool('verbose', False, "Also print TensorFlow's logs and warnings")
FLAGS = flags.FLAGS


def cifar10_style_cnn():
    """contrib's cifar10 model, sized for 28x28x1 images."""
    return keras.Sequential([
        keras.Input((28, 28, 1), name='images'),
        keras.layers.Conv2D(32, 5, padding='same', activation='relu',
                            name='conv1'),
        keras.layers.MaxPooling2D(3, 2, padding='same', name='pool1'),
        keras.layers.Conv2D(32, 5, padding='same', activation='relu',
                            name='conv2'),
        keras.layers.MaxPooling2D(3, 2, padding='same', name='pool2'),
        keras.layers.Flatten(name='flatten'),
        keras.layers.Dense(384, activation='relu', name='local3'),
        keras.layers.Dense(192, activation='relu', name='local4'),
        keras.layers.Dense(10, name='softmax_linear'),
    ], name='cifar10_style')


def _batches(images, labels):
    """Shuffled batches forever, as contrib's input queue gave them."""
    dataset = tf.data.Dataset.from_tensor_slices(
        (support.scale_images(images), labels))
    return iter(dataset.shuffle(len(images), seed=0).repeat()
                .batch(FLAGS.batch_size, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))


def _model_target(pruning, step):
    """The sparsity over all masks that each weight's own target adds up to
    (weight_sparsity_map gives conv2 less than the others)."""
    sizes = [weight.shape.num_elements() for weight in pruning.get_weights()]
    targets = pruning.get_target_sparsities(step)
    return sum(float(t) * n for t, n in zip(targets, sizes)) / sum(sizes)


def main(argv):
    del argv
    if not FLAGS.verbose:
        # Notes from TF's checkpoints; the user cannot act on them.
        logging.set_verbosity(logging.ERROR)
        warnings.simplefilter('ignore')
    try:
        hparams = tf_prune.flags.pruning_hparams_from_flags()
        (x_train, y_train), (x_test, y_test) = support.load_fashion_mnist(
            FLAGS.data_dir)
        checkpoints.check_hparams(FLAGS.train_dir, hparams)
        # A damaged newest checkpoint is passed over, or stops the run here.
        _, resume_note = checkpoints.resume_from(FLAGS.train_dir)
    except (ValueError, support.DataError) as error:  # ModelFileError too
        print(f'custom_training_loop: {error}', file=sys.stderr)
        return 2
    if resume_note:
        print(f'Note: {resume_note}.')

    keras.utils.set_random_seed(0)
    model = tf_prune.prune(cifar10_style_cnn(), hparams)
    optimizer = keras.optimizers.Adam(1e-3)
    model.compile(optimizer)  # so the checkpoint holds the optimizer
    pruning = tf_prune.Pruning(hparams, model)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    try:
        # Locks the directory for this run: a second one there is refused.
        saved = checkpoints.TrainingCheckpoints(model, FLAGS.train_dir)
        checkpoints.write_model_config(model, FLAGS.train_dir, hparams)
        restored = saved.restore_latest()
    except (tf_prune.ModelFileError,  # a checkpoint of another model
            tf_prune.DirectoryInUseError) as error:
        print(f'custom_training_loop: {error}', file=sys.stderr)
        return 2
    if restored:
        pruning.recount_sparsity()
        print(f'Continuing from step {int(optimizer.iterations)}.')
    writer = tf.summary.create_file_writer(FLAGS.train_dir)

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    batches = _batches(x_train, y_train)
    while int(optimizer.iterations) < FLAGS.max_steps:
        loss = train_step(*next(batches))
        # The train op ran, so the step is the new one: contrib's
        # control dependency on train_op.
        step = optimizer.iterations
        pruning.conditional_mask_update(step, summary_writer=writer)
        step = int(step)
        if step % FLAGS.log_frequency == 0:
            with writer.as_default():
                tf.summary.scalar('loss', loss, step=step)
            print(f'step {step}: loss {float(loss):.3f}, sparsity '
                  f'{float(pruning.model_sparsity):.3f} (target '
                  f'{_model_target(pruning, step):.3f})')
        if step % FLAGS.checkpoint_frequency == 0:
            saved.save()
    saved.save()
    step = int(optimizer.iterations)
    with writer.as_default():
        pruning.add_final_summaries(step)
    writer.flush()

    logits = model.predict(support.scale_images(x_test), verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_test))
    print(f'\nStep {step}: test accuracy {100 * accuracy:.2f}%')
    for name, sparsity, target in zip(pruning.get_weight_names(),
                                      pruning.get_weight_sparsity(),
                                      pruning.get_target_sparsities(step)):
        print(f'  {name:<22s} sparsity {float(sparsity):.4f} '
              f'(target {float(target):.4f})')
    print(f'\nSummaries and checkpoints: {FLAGS.train_dir}\n'
          f'  tensorboard --logdir {FLAGS.train_dir}')
    return 0


if __name__ == '__main__':
    app.run(main)
