"""tfmot 0.8.1's MNIST pruning examples on Keras 3 (examples/tfmot_*.py).

Each port is checked against tfmot's file: undoing the changes listed here
(its imports, the data, the flags that shorten a run, Keras 3's `.keras`
format, paths under --output_dir) gives tfmot's file back byte for byte, its
git blob id the one tfmot's repository holds at tag v0.8.1. Then each runs as
a user runs it, on a slice of Fashion-MNIST with a shortened schedule, and
does what it claims: it learns, prunes to the schedule's final sparsity,
reloads with the same accuracy, and writes TFLite files that run and hold
the pruned (and stripped) weights.
"""

import ast
import hashlib
import re
import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from tests.conftest import ROOT, project_env
from tests.helpers.tensorboard_read import LogDir

TFMOT_DIR = 'tensorflow_model_optimization/python/examples/sparsity/keras/mnist'
# The port's notes between the license and the code.
NOTES = re.compile(r'(\n# =+\n)(# tf_prune: .*?\n# Run: [^\n]*\n)', re.S)

# (the port's text, tfmot's text) of each change, shared by the ports.
IMPORT_OS = (
    'from __future__ import print_function\n\n'
    'import os  # tf_prune: {why}\n\nfrom absl',
    'from __future__ import print_function\n\nfrom absl')
TFMOT_IMPORTS = (
    "# tf_prune: tfmot's modules, as names for the API that holds their "
    "functions.\n"
    'import keras\n'
    'from tf_prune import tfmot\n'
    '{extra}'
    '\n'
    'prune = tfmot.sparsity.keras\n'
    'pruning_callbacks = tfmot.sparsity.keras\n'
    'pruning_schedule = tfmot.sparsity.keras\n')
TFMOT_TEST_UTILS = (
    'from tensorflow_model_optimization.python.core.keras import test_utils '
    'as keras_test_utils\n')
TFMOT_KERAS = (
    'from tensorflow_model_optimization.python.core.keras.compat import '
    'keras\n')
TFMOT_SPARSITY = ''.join(
    f'from tensorflow_model_optimization.python.core.sparsity.keras import '
    f'{module}\n' for module in ('prune', 'pruning_callbacks',
                                 'pruning_schedule'))
EPOCHS_FLAG = (
    '      epochs=FLAGS.epochs,  # tf_prune: was epochs\n',
    '      epochs=epochs,\n')
SUMMARIES_LOG_DIR = (
    "      pruning_callbacks.PruningSummaries(  # tf_prune: was '/tmp/logs'\n"
    "          log_dir=os.path.join(FLAGS.output_dir, 'logs'))\n",
    "      pruning_callbacks.PruningSummaries(log_dir='/tmp/logs')\n")

PORTS = {
    'mnist_cnn.py': {
        'port': 'examples/tfmot_mnist_cnn.py',
        'blob': 'eb476863be001ad86f038d8b100405ef88305fef',
        'changes': [
            (IMPORT_OS[0].format(why="for the saved model's path"),
             IMPORT_OS[1]),
            (TFMOT_IMPORTS.format(extra='import tfmot_support\n'),
             TFMOT_KERAS + TFMOT_SPARSITY),
            ("flags.DEFINE_string('output_dir', '/tmp/mnist_train/',\n"
             "                    'Output directory to hold tensorboard "
             "events')\n"
             "# tf_prune: flags to shorten a run; the defaults are the file's "
             "values.\n"
             "flags.DEFINE_integer('epochs', epochs, 'Training epochs of each "
             "model')\n"
             "flags.DEFINE_integer('begin_step', 1000, \"PolynomialDecay's "
             "begin_step\")\n"
             "flags.DEFINE_integer('end_step', 5000, \"PolynomialDecay's "
             "end_step\")\n"
             "flags.DEFINE_integer('frequency', 100, \"PolynomialDecay's "
             "frequency\")\n",
             "flags.DEFINE_string('output_dir', '/tmp/mnist_train/',\n"
             "                    'Output directory to hold tensorboard "
             "events')\n"),
            ('  ' + EPOCHS_FLAG[0], '  ' + EPOCHS_FLAG[1]),
            ("    # tf_prune: a .keras file (Keras 3's format) in --output_dir;"
             " tfmot wrote\n"
             "    # a SavedModel to '/tmp/saved_model' with save_format='tf'.\n"
             "    saved_model_dir = os.path.join(FLAGS.output_dir, "
             "'saved_model.keras')\n"
             "    print('Saving model to: ', saved_model_dir)\n"
             "    keras.models.save_model(model, saved_model_dir)\n",
             "    saved_model_dir = '/tmp/saved_model'\n"
             "    print('Saving model to: ', saved_model_dir)\n"
             "    keras.models.save_model(model, saved_model_dir, "
             "save_format='tf')\n"),
            ("  # tf_prune: Fashion-MNIST's files; was "
             "keras.datasets.mnist.load_data().\n"
             "  (x_train, y_train), (x_test, y_test) = "
             "tfmot_support.load_data()\n",
             "  (x_train, y_train), (x_test, y_test) = "
             "keras.datasets.mnist.load_data()\n"),
            ("              begin_step=FLAGS.begin_step,  # tf_prune: flags, "
             "were\n"
             "              end_step=FLAGS.end_step,  # 1000, 5000 and 100\n"
             "              frequency=FLAGS.frequency)\n",
             "              begin_step=1000,\n"
             "              end_step=5000,\n"
             "              frequency=100)\n"),
        ],
    },
    'mnist_e2e.py': {
        'port': 'examples/tfmot_mnist_e2e.py',
        'blob': 'adfb275df80da2d797490d2c51cdce55f7c4e45a',
        'changes': [
            (IMPORT_OS[0].format(why='for --output_dir'), IMPORT_OS[1]),
            (TFMOT_IMPORTS.format(
                extra='import tfmot_support as keras_test_utils\n'),
             TFMOT_TEST_UTILS + TFMOT_KERAS + TFMOT_SPARSITY),
            ("flags.DEFINE_float('sparsity', '0.0', 'Target sparsity "
             "level.')\n"
             "# tf_prune: flags to shorten a run (the defaults are the file's "
             "values), and\n"
             "# the directory of the files tfmot writes to /tmp.\n"
             "flags.DEFINE_integer('epochs', epochs, 'Training epochs of each "
             "model')\n"
             "flags.DEFINE_integer('frequency', 100, \"ConstantSparsity's "
             "frequency\")\n"
             "flags.DEFINE_string('output_dir', '/tmp', 'Where the logs and "
             "models go')\n",
             "flags.DEFINE_float('sparsity', '0.0', 'Target sparsity "
             "level.')\n"),
            SUMMARIES_LOG_DIR,
            EPOCHS_FLAG,
            # Three times, one for each block size.
            *[("          ConstantSparsity(FLAGS.sparsity, begin_step=0,\n"
               "                           frequency=FLAGS.frequency),  "
               "# tf_prune: was 100\n",
               "          ConstantSparsity(FLAGS.sparsity, begin_step=0, "
               "frequency=100),\n")] * 3,
            ("  # tf_prune: in --output_dir; was '/tmp/dense_mnist.tflite'.\n"
             "  tflite_model_path = os.path.join(FLAGS.output_dir, "
             "'dense_mnist.tflite')\n",
             "  tflite_model_path = '/tmp/dense_mnist.tflite'\n"),
            *[("  tflite_model_path = os.path.join(  # tf_prune: in "
               "--output_dir, was /tmp\n"
               f"      FLAGS.output_dir, 'sparse_mnist_%s_{block}.tflite' "
               f"% FLAGS.sparsity)\n",
               f"  tflite_model_path = '/tmp/sparse_mnist_%s_{block}.tflite' "
               f"% FLAGS.sparsity\n")
              for block in ('2x2', '1x4', '1x16')],
        ],
    },
    'mnist_e2e_sparsity2x4.py': {
        'port': 'examples/tfmot_mnist_e2e_sparsity2x4.py',
        'blob': '0520978f517faf18fd442b936fa2eb249b8bb3c3',
        'changes': [
            ('from __future__ import print_function\n\n'
             'import os  # tf_prune: for --output_dir\n\n'
             'from absl import app as absl_app\n'
             'from absl import flags  # tf_prune: for the flags below\n'
             'import tensorflow as tf\n',
             'from __future__ import print_function\n\n'
             'from absl import app as absl_app\n'
             'import tensorflow as tf\n'),
            (TFMOT_IMPORTS.format(
                extra='from tf_prune.tfmot import wrapper as pruning_wrapper\n'
                      'import tfmot_support as keras_test_utils\n'
                      'import tfmot_support as pruning_utils\n'),
             TFMOT_TEST_UTILS + TFMOT_KERAS + TFMOT_SPARSITY + ''.join(
                 f'from tensorflow_model_optimization.python.core.sparsity.'
                 f'keras import {module}\n'
                 for module in ('pruning_utils', 'pruning_wrapper'))),
            ('epochs = 1\n\n'
             "# tf_prune: a flag to shorten a run (the default is the file's "
             "value), and\n"
             '# the directory of the files tfmot writes to /tmp.\n'
             'FLAGS = flags.FLAGS\n'
             "flags.DEFINE_integer('epochs', epochs, 'Training epochs')\n"
             "flags.DEFINE_string('output_dir', '/tmp', 'Where the logs and "
             "model go')\n\n",
             'epochs = 1\n\n'),
            SUMMARIES_LOG_DIR,
            EPOCHS_FLAG,
            ("  # tf_prune: in --output_dir; was '/tmp/mnist_2x4.tflite'.\n"
             "  tflite_model_path = os.path.join(FLAGS.output_dir, "
             "'mnist_2x4.tflite')\n",
             "  tflite_model_path = '/tmp/mnist_2x4.tflite'\n"),
        ],
    },
}


def _git_blob_id(text):
    data = text.encode()
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def undo_port(text, changes):
    """tfmot's file, from a port: its notes dropped, each change undone."""
    text, notes = NOTES.subn(r'\1', text, count=1)
    assert notes == 1, 'the port has no notes between license and code'
    for port, original in changes:
        assert port in text, f'the port does not hold:\n{port}'
        text = text.replace(port, original, 1)
    return text


@pytest.mark.parametrize('original', sorted(PORTS))
def test_port_is_tfmots_file_but_for_the_listed_changes(original):
    port = PORTS[original]
    text = (ROOT / port['port']).read_text()
    for changed, _ in port['changes']:
        assert 'tf_prune:' in changed, f'an unmarked change:\n{changed}'
    assert f'{TFMOT_DIR}/{original}' in ' '.join(
        line.lstrip('# ') for line in NOTES.search(text).group(2).split('\n')
    ).replace('/ ', '/'), 'the notes do not name the original'
    assert _git_blob_id(undo_port(text, port['changes'])) == port['blob']


def _imports(text):
    modules = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.update(f'{node.module}.{alias.name}'
                           for alias in node.names)
    return modules


@pytest.mark.parametrize('original', sorted(PORTS))
def test_port_imports_the_facade_and_keras_3_only(original):
    text = (ROOT / PORTS[original]['port']).read_text()
    modules = _imports(text)
    assert 'tf_prune.tfmot' in modules and 'keras' in modules
    assert not [m for m in modules if m.split('.')[0] in (
        'tensorflow_model_optimization', 'tf_keras')]
    assert 'TF_USE_LEGACY_KERAS' not in text
    # Nothing downloaded: no keras.datasets.
    assert not [node for node in ast.walk(ast.parse(text))
                if isinstance(node, ast.Attribute) and node.attr == 'datasets']
    # Everything the original took from tfmot's sparsity modules is in the
    # facade's public API.
    used = set(re.findall(
        r'\b(?:prune|pruning_callbacks|pruning_schedule)\.(\w+)', text))
    from tf_prune import tfmot
    assert used <= set(tfmot.sparsity.keras.__all__), used


# ------------------------------------------------------------------- runs


def _run(script, *args, timeout=300):
    """Runs an example as a user does; its stdout, after checking it ran."""
    result = subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=project_env(),
        cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _test_accuracies(stdout):
    return [float(v) for v in re.findall(r'^Test accuracy: ([\d.]+)$', stdout,
                                         re.MULTILINE)]


def _interpreter(path):
    """LiteRT on TFLite's builtin kernels, every tensor kept readable."""
    interpreter = Interpreter(
        model_path=str(path), experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=(
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interpreter.allocate_tensors()
    return interpreter


def _constants(path):
    """`{shape: [values]}` of the float constants of rank 2 or more of a
    TFLite file stored dense (the kernels), read by LiteRT."""
    interpreter = _interpreter(path)
    found = {}
    for detail in interpreter.get_tensor_details():
        shape = tuple(int(d) for d in detail['shape'])
        if (len(shape) >= 2 and detail['dtype'] == np.float32
                and shape[0] != 1):  # activations have batch size 1
            found.setdefault(shape, []).append(
                interpreter.get_tensor(detail['index']))
    return found


def _runs(path, images):
    """The TFLite file's outputs for `images`, one image at a time."""
    interpreter = _interpreter(path)
    inputs = interpreter.get_input_details()[0]['index']
    outputs = interpreter.get_output_details()[0]['index']
    results = []
    for image in images:
        interpreter.set_tensor(inputs, image[np.newaxis])
        interpreter.invoke()
        results.append(interpreter.get_tensor(outputs)[0])
    return np.array(results)


def _test_images(count):
    import support
    _, (images, labels) = support.load_fashion_mnist()
    return support.scale_images(images[:count]), labels[:count]


def _variable_ops(path):
    """The TFLite ops of `path` that read or write variables."""
    from tensorflow.lite.python import schema_py_generated as schema
    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    names = {code: name for name, code in vars(
        schema.BuiltinOperator).items() if not name.startswith('_')}
    ops = {names[max(model.OperatorCodes(i).BuiltinCode(),
                     model.OperatorCodes(i).DeprecatedBuiltinCode())]
           for i in range(model.OperatorCodesLength())}
    return {op for op in ops if 'VAR' in op}


# The CNN example: 512 images are 4 steps per epoch; PolynomialDecay from
# 0.1 to 0.75 over steps 0 to 8, pruning every 4 steps.
CNN_ARGS = ('--epochs=2', '--train_examples=512', '--test_examples=256',
            '--begin_step=0', '--end_step=8', '--frequency=4')
# Keras' automatic names of the layers the three models prune, in order:
# layer-wise, then the Sequential and the Functional model pruned whole.
CNN_PRUNED = [f'{kind}{suffix}' for start in (0, 2, 4)
              for kind in ('conv2d', 'dense')
              for suffix in ('' if start == 0 else f'_{start}',
                             f'_{start + 1}')]


def _polynomial_decay(step, initial=0.1, final=0.75, begin=0, end=8,
                      power=3):
    progress = min(1.0, max(0.0, (step - begin) / (end - begin)))
    return final + (initial - final) * (1 - progress) ** power


def _assert_sparsity_by_tfmots_rule(sparsity, target):
    """tfmot keeps every weight at least as large as the k-th largest:
    weights tied with it stay too, so a mask may fall short of `target` by
    those ties (63 of the 3.2M weights of the Dense kernel seen), never
    exceed it."""
    assert target - 1e-4 <= sparsity <= target + 1e-6, (sparsity, target)


@pytest.fixture(scope='module')
def cnn_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp('tfmot_mnist_cnn')
    stdout = _run('examples/tfmot_mnist_cnn.py', f'--output_dir={output_dir}',
                  *CNN_ARGS)
    return output_dir, stdout


@pytest.mark.slow
def test_cnn_trains_three_models_that_keep_their_accuracy(cnn_run):
    _, stdout = cnn_run
    assert len(re.findall(r'^Model: ', stdout, re.MULTILINE)) == 3
    accuracies = _test_accuracies(stdout)
    # Each model's, then its reloaded copy's: the same.
    assert len(accuracies) == 6
    assert accuracies[0::2] == accuracies[1::2]
    # Each model learns: its second epoch's training loss is below its
    # first's. (Its test accuracy after 8 steps says little: the
    # BatchNormalization's moving statistics have barely moved from their
    # start, so inference-mode accuracy was seen from 0.09 to 0.39.) fit's
    # verbose=1 rewrites its progress line at every step: the epoch's mean
    # loss is the one its validation's figures follow.
    losses = [float(v) for v in re.findall(
        r' - loss: ([\d.]+) - val_accuracy: ', stdout)]
    assert len(losses) == 6
    assert all(second < first
               for first, second in zip(losses[0::2], losses[1::2])), losses


@pytest.mark.slow
def test_cnn_reloads_pruned_to_the_final_sparsity(cnn_run):
    import keras
    from tf_prune.tfmot.wrapper import PruneLowMagnitude
    output_dir, _ = cnn_run
    # The last model saved: the Functional one, every layer wrapped. It
    # loads without custom_objects.
    model = keras.models.load_model(output_dir / 'saved_model.keras')
    layers = [layer for layer in model.layers
              if not isinstance(layer, keras.layers.InputLayer)]
    wrappers = [layer for layer in layers
                if isinstance(layer, PruneLowMagnitude)]
    assert len(wrappers) == len(layers) == 9
    pruned = {w.name: w for w in wrappers if w.pruned_weights}
    assert sorted(pruned) == sorted(
        f'prune_low_magnitude_{name}' for name in CNN_PRUNED[8:])
    for wrapper in pruned.values():
        assert int(wrapper.pruning_step.numpy()) == 8
        [weight] = wrapper.pruned_weights
        mask = weight.mask.numpy()
        _assert_sparsity_by_tfmots_rule(1 - mask.mean(), 0.75)
        # The saved kernel is weight * mask (UpdatePruningStep re-masks at
        # each epoch's end).
        kernel = weight.weight.numpy()
        assert np.all(kernel[mask == 0] == 0)


@pytest.mark.slow
def test_cnn_summaries_follow_the_schedule_with_tfmots_tags(cnn_run):
    output_dir, _ = cnn_run
    series = LogDir(output_dir).chart_series('metrics', '.*')
    expected = set()
    for name in CNN_PRUNED:
        expected |= {f'prune_low_magnitude_{name}/mask:0/sparsity',
                     f'prune_low_magnitude_{name}/threshold:0/threshold'}
    assert set(series) == expected
    for name in CNN_PRUNED:
        sparsity = series[f'prune_low_magnitude_{name}/mask:0/sparsity']
        # Each epoch's start (steps 0 and 4), and the end of training.
        assert [step for step, _ in sparsity] == [0, 4, 8]
        for step, value in sparsity:
            _assert_sparsity_by_tfmots_rule(
                value, _polynomial_decay(step) if step else 0.0)
        threshold = series[f'prune_low_magnitude_{name}/threshold:0/threshold']
        assert threshold[-1][1] > 0


# The end-to-end example: 4 steps; ConstantSparsity(0.75) prunes at steps 2
# and 4.
E2E_TEST_EXAMPLES = 200
E2E_ARGS = ('--sparsity=0.75', '--epochs=1', '--train_examples=512',
            f'--test_examples={E2E_TEST_EXAMPLES}', '--frequency=2')
# The kernels in TFLite's layout ([out, h, w, in], [out, in]); the example
# prunes the two Dense layers.
KERNELS = {(32, 5, 5, 1): False, (64, 5, 5, 32): False, (1024, 3136): True,
           (10, 1024): True}


@pytest.fixture(scope='module')
def e2e_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp('tfmot_mnist_e2e')
    stdout = _run('examples/tfmot_mnist_e2e.py', f'--output_dir={output_dir}',
                  *E2E_ARGS)
    return output_dir, stdout


def _tflite_accuracies(stdout):
    return {block: float(value) for block, value in re.findall(
        r'^evaluate (\w+) model\n(?:Accuracy after .*\n)*([\d.]+)$', stdout,
        re.MULTILINE)}


@pytest.mark.slow
def test_e2e_tflite_files_compute_what_keras_did(e2e_run):
    _, stdout = e2e_run
    keras_accuracies = _test_accuracies(stdout)
    assert len(keras_accuracies) == 3 and min(keras_accuracies) > 0.2
    tflite = _tflite_accuracies(stdout)
    assert list(tflite) == ['2x2', '1x4', '1x16']
    # The stripped float32 files predict as the pruned Keras models did;
    # the 1x16 one, with int8 weights, nearly.
    assert tflite['2x2'] == pytest.approx(keras_accuracies[0], abs=0.011)
    assert tflite['1x4'] == pytest.approx(keras_accuracies[1], abs=0.011)
    assert tflite['1x16'] == pytest.approx(keras_accuracies[2], abs=0.05)
    ratios = [float(r) for r in re.findall(r'^Compression ratio:  ([\d.]+)$',
                                           stdout, re.MULTILINE)]
    # 75% of the Dense kernels (most of the weights) left out; int8 weights
    # a quarter of float32's.
    assert len(ratios) == 3
    assert ratios[0] < 0.5 and ratios[1] < 0.5 and ratios[2] < 0.1


@pytest.mark.slow
def test_e2e_tflite_files_hold_stripped_kernels_at_the_target(e2e_run):
    from tf_prune.export import sparsity_report
    output_dir, _ = e2e_run
    files = ['dense_mnist.tflite'] + [f'sparse_mnist_0.75_{block}.tflite'
                                      for block in ('2x2', '1x4', '1x16')]
    images, _ = _test_images(8)
    for name in files:
        path = output_dir / name
        outputs = _runs(path, images)
        assert outputs.shape == (8, 10)
        np.testing.assert_allclose(outputs.sum(axis=1), 1, rtol=1e-4)
        # No variable is left (a wrapper's step, masks and thresholds), and
        # no mask beside its kernel: one tensor of each kernel's shape.
        assert not _variable_ops(path), name
        rows = sparsity_report.report(str(path))
        kernels = [row for row in rows if len(row.shape) >= 2]
        assert sorted(row.shape for row in kernels) == sorted(KERNELS), name
        for row in kernels:
            if KERNELS[row.shape] and name.endswith('1x16.tflite'):
                # int8 weights may round a few more to zero.
                assert 0.75 - 1e-4 <= row.sparsity <= 0.76, (name, row)
            elif KERNELS[row.shape]:
                _assert_sparsity_by_tfmots_rule(row.sparsity, 0.75)
            else:
                assert row.sparsity < 0.01, (name, row)


@pytest.mark.slow
def test_e2e_2x2_blocks_are_whole_in_the_dense_file(e2e_run):
    output_dir, _ = e2e_run
    # dense_mnist.tflite is the 2x2 model converted without sparse encoding.
    constants = _constants(output_dir / 'dense_mnist.tflite')
    for shape in ((1024, 3136), (10, 1024)):
        [kernel] = constants[shape]
        rows, columns = shape
        blocks = (kernel != 0).reshape(rows // 2, 2, columns // 2, 2)
        kept = blocks.sum(axis=(1, 3))
        assert set(np.unique(kept)) <= {0, 4}, shape
        _assert_sparsity_by_tfmots_rule(np.mean(kept == 0), 0.75)


# The 2:4 example: 4 steps; the pattern is set at step 1.
E2E_2X4_ARGS = ('--epochs=1', '--train_examples=512',
                f'--test_examples={E2E_TEST_EXAMPLES}')


def _satisfies_2_of_4(values):
    """At most 2 non-zeros in each 4 consecutive values of the last axis
    (TFLite's input channels), counted from its start."""
    nonzero = (np.asarray(values) != 0).reshape(-1, values.shape[-1])
    counts = np.add.reduceat(nonzero.astype(int),
                             np.arange(0, nonzero.shape[1], 4), axis=1)
    return bool((counts <= 2).all())


@pytest.fixture(scope='module')
def e2e_2x4_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp('tfmot_mnist_e2e_sparsity2x4')
    stdout = _run('examples/tfmot_mnist_e2e_sparsity2x4.py',
                  f'--output_dir={output_dir}', *E2E_2X4_ARGS)
    return output_dir, stdout


@pytest.mark.slow
def test_e2e_2x4_checks_the_pattern_then_writes_a_2x4_tflite_file(
        e2e_2x4_run):
    # The example's first layer is prune_low_magnitude(Conv2D(...,
    # input_shape=...)), and its check calls layer.layer.get_prunable_weights()
    # on the wrapped Conv2D and Dense layers: both as tfmot has them.
    output_dir, stdout = e2e_2x4_run
    assert re.search(r'^Pass the check for sparsity 2x4:  True$', stdout,
                     re.MULTILINE)
    [keras_accuracy] = _test_accuracies(stdout)
    assert keras_accuracy > 0.2
    path = output_dir / 'mnist_2x4.tflite'
    assert f'model is saved to {path}' in stdout
    tflite = float(stdout.rstrip().rsplit('\n', 1)[-1])
    assert tflite == pytest.approx(keras_accuracy, abs=0.011)
    images, labels = _test_images(E2E_TEST_EXAMPLES)
    assert np.mean(_runs(path, images).argmax(axis=1) == labels) == tflite
    assert not _variable_ops(path)
    constants = _constants(path)
    # The pruned Conv2D and Dense kernels: exactly 2 of every 4 input
    # channels kept (the first Conv2D has one input channel, kept); the
    # last Dense layer is not pruned, and not 2:4.
    [conv1] = constants[(32, 5, 5, 1)]
    [conv2] = constants[(64, 5, 5, 32)]
    [dense] = constants[(1024, 3136)]
    [logits] = constants[(10, 1024)]
    assert np.all(conv1 != 0)
    for kernel in (conv2, dense):
        assert _satisfies_2_of_4(kernel)
        assert np.mean(kernel == 0) == 0.5
    assert not _satisfies_2_of_4(logits)
