r"""contrib's cifar10 pruning example as TF1 graph code, on Fashion-MNIST.

The structure of contrib's `cifar10_train.py`: a graph with a global step,
masked layers (`masked_conv2d`, `masked_fully_connected`), a train op, the
`Pruning` object's conditional mask update and its summaries, run in a
`MonitoredTrainingSession` that saves checkpoints and summaries to
`--train_dir`. Only the import is tf_prune's:

    from tf_prune.compat.v1 import pruning, layers

    python examples/cifar10_style_v1.py --train_dir=/tmp/cifar10_v1 \
        --pruning_hparams=name=cifar10_pruning,begin_pruning_step=200,target_sparsity=0.9,sparsity_function_begin_step=200,sparsity_function_end_step=1200,weight_sparsity_map=[conv1:0.9,conv2/weights:0.8]

One session run per step trains and then updates the masks: the update
reads the step the train op made, and the summaries and checkpoint of that
step see the updated masks. (contrib's example ran a second `run` for the
update, which trained again through its control dependency and raised once
the stop hook had asked to stop, losing the last checkpoint.) A second run
with the same `--train_dir` continues from its last checkpoint. Strip it:

    python tools/strip_pruning_vars.py --checkpoint_dir=/tmp/cifar10_v1 \
        --output_node_names=probabilities --output_dir=/tmp/cifar10_v1/stripped

TensorFlow's own logs and warnings show with `--verbose`.
"""

import os
import sys
import warnings

# TensorFlow reads its C++ log level when it is imported, before absl parses
# the flags: so a plain --verbose is looked for in sys.argv.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0' if '--verbose' in sys.argv else '2'

from absl import app, flags, logging  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_prune import checkpoints  # noqa: E402
from tf_prune.compat.v1 import layers  # noqa: E402
from tf_prune.compat.v1 import pruning  # noqa: E402

import support  # noqa: E402

v1 = tf.compat.v1

flags.DEFINE_string('train_dir', '/tmp/cifar10_v1_train',
                    'Where checkpoints and summaries go')
flags.DEFINE_string(
    'pruning_hparams',
    'name=cifar10_pruning,begin_pruning_step=200,target_sparsity=0.9,'
    'sparsity_function_begin_step=200,sparsity_function_end_step=1200,'
    'weight_sparsity_map=[conv1:0.9,conv2/weights:0.8]',
    'Comma separated list of pruning-related hyperparameters')
flags.DEFINE_integer('max_steps', 1500, 'Number of batches to run')
flags.DEFINE_integer('batch_size', 128, 'Training batch size')
flags.DEFINE_integer('log_frequency', 100, 'Steps between progress lines')
flags.DEFINE_integer('save_checkpoint_steps', 500,
                     'Steps between checkpoints')
flags.DEFINE_string('data_dir', support.DEFAULT_DATA_DIR,
                    'Directory of the Fashion-MNIST idx files')
flags.DEFINE_bool('verbose', False, "Also print TensorFlow's logs and warnings")
FLAGS = flags.FLAGS


def inference(images):
    """contrib's cifar10 network, sized for 28x28x1 images.

    Args:
      images: a float [batch, 28, 28, 1] tensor.

    Returns:
      The logits, [batch, 10].
    """
    net = layers.masked_conv2d(images, 32, 5, scope='conv1')
    net = tf.nn.max_pool2d(net, 3, 2, 'SAME', name='pool1')
    net = layers.masked_conv2d(net, 32, 5, scope='conv2')
    net = tf.nn.max_pool2d(net, 3, 2, 'SAME', name='pool2')
    net = tf.reshape(net, [-1, 7 * 7 * 32])
    net = layers.masked_fully_connected(net, 384, scope='local3')
    net = layers.masked_fully_connected(net, 192, scope='local4')
    return layers.masked_fully_connected(net, 10, activation_fn=None,
                                         scope='softmax_linear')


def build_graph(hparams):
    """The training graph: returns (images, labels, loss, step_op, p)."""
    # A resource variable, read in order under control dependencies: a TF1
    # ref variable read after the train op may still give the old step.
    with v1.variable_scope(v1.get_variable_scope(), use_resource=True):
        global_step = v1.train.get_or_create_global_step()
    images = v1.placeholder(tf.float32, [None, 28, 28, 1], name='images')
    labels = v1.placeholder(tf.int64, [None], name='labels')
    logits = inference(images)
    tf.nn.softmax(logits, name='probabilities')
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits), name='loss')
    train_op = v1.train.AdamOptimizer(1e-3).minimize(
        loss, global_step=global_step)

    # The mask update runs after the train op, at the step it made.
    with tf.control_dependencies([train_op]):
        trained_step = tf.identity(global_step, name='trained_step')
    p = pruning.Pruning(hparams, global_step=trained_step)
    mask_update_op = p.conditional_mask_update_op()
    # Created under the update, the summaries read the updated masks.
    with tf.control_dependencies([mask_update_op]):
        p.add_pruning_summaries()
        v1.summary.scalar('loss', loss)
        step_op = tf.identity(trained_step, name='step_done')
    return images, labels, loss, step_op, p


def _batches(images, labels):
    """Shuffled batches forever."""
    rng = np.random.default_rng(0)
    while True:
        order = rng.permutation(len(images))
        for start in range(0, len(order) - FLAGS.batch_size + 1,
                           FLAGS.batch_size):
            batch = order[start:start + FLAGS.batch_size]
            yield images[batch], labels[batch]


def train(hparams, train_data):
    """Trains to --max_steps, resuming from --train_dir's checkpoint."""
    v1.set_random_seed(0)
    images, labels, loss, step_op, _ = build_graph(hparams)
    hooks = [v1.train.StopAtStepHook(last_step=FLAGS.max_steps),
             v1.train.NanTensorHook(loss)]
    batches = _batches(*train_data)
    with v1.train.MonitoredTrainingSession(
            checkpoint_dir=FLAGS.train_dir, hooks=hooks,
            save_checkpoint_steps=FLAGS.save_checkpoint_steps,
            save_checkpoint_secs=None, save_summaries_steps=FLAGS.log_frequency,
            log_step_count_steps=None) as session:
        # Read without the hooks, whose summaries need a batch fed.
        start = session.run_step_fn(
            lambda step_context: step_context.session.run(
                v1.train.get_global_step()))
        if start:
            print(f'Continuing from step {start}.')
        while not session.should_stop():
            x, y = next(batches)
            step, loss_value = session.run([step_op, loss],
                                           {images: x, labels: y})
            if step % FLAGS.log_frequency == 0:
                print(f'step {step}: loss {loss_value:.3f}')


def evaluate(test_data):
    """Test accuracy and mask sparsities of --train_dir's latest checkpoint."""
    prefix = v1.train.latest_checkpoint(FLAGS.train_dir)
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        v1.train.import_meta_graph(prefix + '.meta').restore(session, prefix)
        predictions = np.concatenate([
            np.argmax(session.run('probabilities:0', {'images:0': batch}), 1)
            for batch in np.array_split(test_data[0], 10)])
        accuracy = float(np.mean(predictions == test_data[1]))
        step = session.run(v1.train.get_global_step())
        masks = pruning.get_masks()
        sparsities = session.run(pruning.get_weight_sparsity())
    return step, accuracy, [(m.op.name, s) for m, s in zip(masks, sparsities)]


def main(argv):
    del argv
    if not FLAGS.verbose:
        # Notes from TF's deprecated TF1 APIs; the user cannot act on them.
        logging.set_verbosity(logging.ERROR)
        warnings.simplefilter('ignore')
    try:
        hparams = pruning.get_pruning_hparams().parse(FLAGS.pruning_hparams)
        hparams.validate()
        (x_train, y_train), (x_test, y_test) = support.load_fashion_mnist(
            FLAGS.data_dir)
        # A damaged newest checkpoint is passed over, or stops the run here.
        resume, resume_note = checkpoints.resume_from(FLAGS.train_dir)
    except (ValueError, support.DataError) as error:  # ModelFileError too
        print(f'cifar10_style_v1: {error}', file=sys.stderr)
        return 2
    if resume_note:
        print(f'Note: {resume_note}.')
        # MonitoredTrainingSession restores what the state file names.
        v1.train.update_checkpoint_state(FLAGS.train_dir, resume)

    v1.disable_eager_execution()
    with tf.Graph().as_default():
        train(hparams, (support.scale_images(x_train), y_train))
    step, accuracy, sparsities = evaluate(
        (support.scale_images(x_test), y_test))
    print(f'\nStep {step}: test accuracy {100 * accuracy:.2f}%')
    for name, sparsity in sparsities:
        print(f'  {name:<22s} sparsity {sparsity:.4f}')
    print(f'\nSummaries and checkpoints: {FLAGS.train_dir}\n'
          f'  tensorboard --logdir {FLAGS.train_dir}')
    return 0


if __name__ == '__main__':
    app.run(main)
