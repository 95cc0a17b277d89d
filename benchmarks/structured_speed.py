"""What one-shot L1 channel removal buys: size, FLOPs and latency, shrunk
against dense.

Models: `keras.applications.ResNet50` and `MobileNetV2` (weights=None,
160x160x3 inputs, 1000 classes), and the Fashion-MNIST CNN of
`examples/fashion_mnist_cnn.py` (`cnn()`, 28x28x1). Each is built with seed
0, its biases and BatchNormalization vectors drawn from U(0.5, 1.5) (as the
applications test does, so that slicing them matters to the output check).
For each channel sparsity s (0.3, 0.5, 0.7), `keep_top(groups, s)` on
`l1_scores` picks the lowest-L1 fraction s of every group's removable
channels and `shrink` removes them. All of it runs in one process.

The output check. For every case, the shrunk model's outputs on one batch of
two inputs (inference mode) must equal those of a copy of the dense model
with the same channels zeroed (`zero_channels`) within 1e-5 of the zeroed
model's output range, or the script stops: the speed is that of an
equivalent model. So must the logits (the last Dense layer before its
softmax), since a softmax of random weights can saturate. The LiteRT file's
outputs are compared with the Keras model's too, and the largest difference
(of the output range) recorded.

Sizes. Parameters (`count_params`); FLOPs per example from
`tf_prune.structured.cost.flops` (its `FLOPS_CONVENTION`: 2 x the
multiply-accumulates (MACs) of Conv1D/2D/3D, Conv*Transpose, DepthwiseConv,
SeparableConv (depthwise and pointwise) and Dense layers, from their kernel
and output shapes; biases, BatchNormalization, activations, pooling and adds
are not counted). `.tflite` bytes of
`tf_prune.export.tflite(model, path, sparse=False)` (float32).

Latency. Four settings per model: TensorFlow `predict_on_batch` on batch 1
and on batch 32 (TensorFlow's default threads: all cores), and LiteRT's
`Interpreter` with its default XNNPACK delegate on batch 1 with
num_threads 1 and 2 (`invoke` only; the input is set once). The dense model
and its shrunk copies are timed side by side, as `train_overhead.py` times
training steps: every model first runs `--warmup` untimed calls; then
`--rounds` rounds, each a turn of N consecutive timed calls per model, in the
order 0.3, dense, 0.5, 0.7, reversed every other round. N is the same for
all models of a setting: `--turn_seconds` over the dense model's median
warm-up call time (the first call, which may trace, left out), at least 1.
A model's time in a round is the median of its turn's calls. For each
shrunk model and round r, ratio_r = its time in round r / dense's time in
round r (`paired.py`): both come from the same few seconds of the machine,
so a slow spell of the shared CPU moves both. Reported: each
model's median call time over all its timed calls, and the median of ratio_r
over the rounds with its 25th and 75th percentiles. Also recorded: the
process's CPU seconds (all threads) per wall second of each setting's timed
rounds, which shows whether a second thread found a free core.

The goal of issue 13: at 0.5 on ResNet50, shrunk/dense latency <= 0.40 in
LiteRT (batch 1) and in TensorFlow (batch 32). It is reported, met or not.

Writes `--json` (default benchmarks/results/structured_speed.json) and a plot
of latency ratio against channel sparsity beside it (same name, `.png`).
`--quick` is a smoke run of a few seconds (the CNN only, 2 rounds) that
writes no file unless --json is given.

Usage: python benchmarks/structured_speed.py [--rounds=15]
  [--turn_seconds=0.25] [--warmup=3] [--quick]
  [--json=benchmarks/results/structured_speed.json]
"""

import json
import os
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# The examples' Fashion-MNIST CNN (importing the example defines its flags
# too; none of them is read here).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'examples'))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

import machine  # noqa: E402
import paired  # noqa: E402
import render_docs  # noqa: E402
import tf_prune  # noqa: E402
from fashion_mnist_cnn import cnn  # noqa: E402
from tf_prune import structured  # noqa: E402
from tf_prune.structured import cost  # noqa: E402
from tf_prune.core import atomic  # noqa: E402

MODELS = ('ResNet50', 'MobileNetV2', 'fashion_mnist_cnn')

flags.DEFINE_list('models', list(MODELS), 'Models to measure, of '
                  + ', '.join(MODELS))
flags.DEFINE_list('sparsities', ['0.3', '0.5', '0.7'],
                  'Fractions of each channel group removed')
flags.DEFINE_integer('rounds', 15, 'Timed rounds per setting')
flags.DEFINE_float('turn_seconds', 0.25, "A turn's length in dense calls: "
                   'this over the dense warm-up call time, at least 1 call')
flags.DEFINE_integer('warmup', 3, 'Untimed calls per model and setting '
                     'first, at least 2 (the first may trace)')
flags.DEFINE_bool('quick', False, 'Smoke run: the CNN only, 2 rounds, short '
                  'turns; writes no file unless --json is given')
flags.DEFINE_string('json', 'benchmarks/results/structured_speed.json',
                    'Where to write the figures ("" for nowhere); the plot '
                    'goes beside it as .png')
FLAGS = flags.FLAGS

IMAGE_SIZE = 160
TF_BATCHES = (1, 32)
LITERT_THREADS = (1, 2)
TOLERANCE = 1e-5  # of the output range: shrunk against zeroed
DENSE = 'dense'
GOAL = {'model': 'ResNet50', 'sparsity': 0.5, 'max_ratio': 0.40,
        'settings': ['litert_threads_1', 'litert_threads_2', 'tf_batch_32']}

_L = keras.layers


def _build(name):
    keras.utils.set_random_seed(0)
    if name == 'fashion_mnist_cnn':
        model = cnn()
    else:
        model = getattr(keras.applications, name)(
            weights=None, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    rng = np.random.default_rng(3)
    for variable in model.weights:
        if len(variable.shape) == 1:
            variable.assign(rng.uniform(0.5, 1.5, variable.shape)
                            .astype(np.float32))
    return model


def _outputs(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _logits(model, x):
    """The last layer's output before its activation, when it is a Dense
    layer with one (a softmax of random weights saturates: ResNet50's gives
    1 - 4e-7 to one class), else the model's outputs."""
    last = model.layers[-1]
    if not isinstance(last, _L.Dense) or last.activation in (
            None, keras.activations.linear):
        return _outputs(model, x)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    features = keras.Model(inputs, last.input)(x, training=False)
    return keras.ops.convert_to_numpy(
        keras.ops.matmul(features, last.kernel) + last.bias)


def _relative_difference(got, expected):
    if not (np.all(np.isfinite(expected)) and np.ptp(expected) > 0):
        raise AssertionError('the zeroed model gives no finite, varied output')
    return float(np.abs(got - expected).max() / np.ptp(expected))


def _check_equivalent(dense, shrunk, removed, x):
    """Max |shrunk - zeroed| over the zeroed model's range, of the outputs
    and of the logits; raises if either is above TOLERANCE."""
    zeroed = keras.models.clone_model(dense)
    zeroed.set_weights(dense.get_weights())
    structured.zero_channels(zeroed, removed)
    differences = {
        'outputs': _relative_difference(_outputs(shrunk, x),
                                        _outputs(zeroed, x)),
        'logits': _relative_difference(_logits(shrunk, x), _logits(zeroed, x))}
    for what, difference in differences.items():
        if not difference <= TOLERANCE:
            raise AssertionError(
                f'{shrunk.name}: shrunk {what} differ from the zeroed '
                f"model's by {difference:.2e} of their range (> {TOLERANCE})")
    return differences


def _litert(path, threads):
    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def _litert_difference(path, model, x):
    """LiteRT's output against Keras', over the Keras output range."""
    interpreter = _litert(path, 1)
    interpreter.set_tensor(interpreter.get_input_details()[0]['index'], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]['index'])
    return _relative_difference(got, _outputs(model, x))


def _turn_order(labels, round_index):
    """Dense between the shrunk models; reversed every other round."""
    dense, shrunk = labels[0], labels[1:]
    order = shrunk[:len(shrunk) // 2] + [dense] + shrunk[len(shrunk) // 2:]
    return order if round_index % 2 == 0 else order[::-1]


def _seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def time_side_by_side(calls, rounds, turn_seconds, warmup):
    """Times `calls` ({label: function}, dense first) in paired rounds.

    Returns:
      {calls_per_turn, round_ms: {label: [median ms of its turn, per
      round]}, median_ms: {label: median of all its timed calls},
      cpu_per_wall: this process's CPU seconds (all its threads) per
      second of the timed rounds}.
    """
    labels = list(calls)
    warm = {label: [] for label in labels}
    for _ in range(warmup):
        for label in labels:
            warm[label].append(_seconds(calls[label]))
    # The first call may trace or allocate: the calibration leaves it out.
    per_turn = max(1, round(turn_seconds / np.median(warm[DENSE][1:])))
    every = {label: [] for label in labels}
    round_ms = {label: [] for label in labels}
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for round_index in range(rounds):
        for label in _turn_order(labels, round_index):
            times = [1000 * _seconds(calls[label]) for _ in range(per_turn)]
            every[label] += times
            round_ms[label].append(round(float(np.median(times)), 4))
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - wall_start
    return {'calls_per_turn': per_turn, 'round_ms': round_ms,
            'cpu_per_wall': round(cpu / wall, 3) if wall > 0 else None,
            'median_ms': {label: round(float(np.median(t)), 4)
                          for label, t in every.items()}}


def _setting_result(timed):
    """The figures of one setting: medians, paired ratios per label."""
    rows = {}
    dense_rounds = timed['round_ms'][DENSE]
    for label, times in timed['round_ms'].items():
        row = {'median_ms': timed['median_ms'][label]}
        if label != DENSE:
            summary = paired.summarize(
                paired.round_ratios(times, dense_rounds))
            row.update({f'ratio_{key}': round(value, 4)
                        for key, value in summary.items() if key != 'rounds'})
        rows[label] = row
    return {'calls_per_turn': timed['calls_per_turn'],
            'cpu_per_wall': timed['cpu_per_wall'],
            'round_ms': timed['round_ms'], 'by_model': rows}


def _predict(model, x):
    return lambda: model.predict_on_batch(x)


def _invoke(interpreter):
    return interpreter.invoke


def measure_model(name, sparsities, workdir):
    """The figures of one architecture, dense and shrunk at `sparsities`."""
    started = time.perf_counter()
    dense = _build(name)
    found = structured.find_channel_groups(dense)
    input_shape = tuple(int(d) for d in dense.input_shape[1:])
    rng = np.random.default_rng(0)
    check_x = rng.uniform(-1, 1, (2, *input_shape)).astype(np.float32)
    one = rng.uniform(-1, 1, (1, *input_shape)).astype(np.float32)
    batch = rng.uniform(-1, 1, (max(TF_BATCHES), *input_shape)).astype(
        np.float32)
    models = {DENSE: dense}
    rows = {DENSE: {'sparsity': 0.0, 'channels_removed': 0}}
    total_channels = sum(group.size for group in found.groups)
    removable = sum(len(group.removable) for group in found.groups)
    for sparsity in sparsities:
        label = f'{sparsity:g}'
        removed = structured.keep_top(found, sparsity)
        shrunk = structured.shrink(dense, removed)
        rows[label] = {
            'sparsity': sparsity,
            'channels_removed': sum(map(len, removed.values())),
            **{f'max_difference_to_zeroed_{what}': difference
               for what, difference in _check_equivalent(
                   dense, shrunk, removed, check_x).items()}}
        models[label] = shrunk
    for label, model in models.items():
        path = os.path.join(workdir, f'{name}_{label}.tflite')
        rows[label].update({
            'params': int(model.count_params()),
            'flops': int(cost.flops(model)),
            'tflite_bytes': int(tf_prune.export.tflite(model, path,
                                                       sparse=False)),
            'litert_max_difference': _litert_difference(path, model, one)})
        rows[label]['tflite_path'] = path
    prepared = time.perf_counter() - started
    print(f'{name}: built, shrunk, checked and converted in {prepared:.0f} s',
          flush=True)

    settings = {}
    for size in TF_BATCHES:
        x = one if size == 1 else batch[:size]
        settings[f'tf_batch_{size}'] = _setting_result(time_side_by_side(
            {label: _predict(model, x) for label, model in models.items()},
            FLAGS.rounds, FLAGS.turn_seconds, FLAGS.warmup))
    for threads in LITERT_THREADS:
        interpreters = {}
        for label in models:
            interpreter = _litert(rows[label]['tflite_path'], threads)
            interpreter.set_tensor(
                interpreter.get_input_details()[0]['index'], one)
            interpreters[label] = interpreter
        settings[f'litert_threads_{threads}'] = _setting_result(
            time_side_by_side(
                {label: _invoke(i) for label, i in interpreters.items()},
                FLAGS.rounds, FLAGS.turn_seconds, FLAGS.warmup))
        del interpreters
    for row in rows.values():
        del row['tflite_path']
    return {
        'model': name, 'input_shape': list(input_shape),
        'channel_groups': len(found.groups),
        'channels': total_channels, 'removable_channels': removable,
        'unprunable': structured.describe_unprunable(found),
        'rows': [{'label': label, **row} for label, row in rows.items()],
        'settings': settings,
        'seconds': round(time.perf_counter() - started, 1)}


def goal(models):
    """The issue's goal, from the measured ratios (None if not measured)."""
    for result in models:
        if result['model'] != GOAL['model']:
            continue
        label = f"{GOAL['sparsity']:g}"
        ratios = {}
        for setting in GOAL['settings']:
            by_model = result['settings'][setting]['by_model']
            if label in by_model:
                ratios[setting] = by_model[label]['ratio_median']
        if len(ratios) == len(GOAL['settings']):
            return {**GOAL, 'ratios': ratios,
                    'met': {s: r <= GOAL['max_ratio']
                            for s, r in ratios.items()}}
    return None


def plot(result, path):
    """Latency ratio (paired median) against channel sparsity, per model."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    models = result['models']
    figure, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models),
                                                         3.8), squeeze=False)
    for axis, model in zip(axes[0], models):
        shrunk = [row for row in model['rows'] if row['label'] != DENSE]
        x = [0.0] + [row['sparsity'] for row in shrunk]
        for setting, title in render_docs.STRUCTURED_SETTINGS:
            by_model = model['settings'][setting]['by_model']
            y = [1.0] + [by_model[row['label']]['ratio_median']
                         for row in shrunk]
            axis.plot(x, y, marker='o', label=title)
        dense_flops = model['rows'][0]['flops']
        axis.plot(x, [1.0] + [row['flops'] / dense_flops for row in shrunk],
                  'k--', label='FLOPs ratio')
        if model['model'] == GOAL['model']:
            axis.axhline(GOAL['max_ratio'], color='grey', linewidth=0.8,
                         linestyle=':', label=f"goal: {GOAL['max_ratio']:.2f} "
                         f"at {GOAL['sparsity']:g}")
        axis.set_title(model['model'])
        axis.set_xlabel('channel sparsity')
        axis.set_ylim(0, 1.1)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel('latency, shrunk / dense')
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv):
    del argv
    # The converter's and the predict functions' notes (assets written,
    # retracing for each new model) say nothing about the figures.
    logging.set_verbosity(logging.ERROR)
    tf.get_logger().setLevel('ERROR')
    names = ['fashion_mnist_cnn'] if FLAGS.quick else FLAGS.models
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise app.UsageError(f'unknown --models {unknown}; use {MODELS}')
    sparsities = sorted(float(s) for s in FLAGS.sparsities)
    if not all(0 < s < 1 for s in sparsities):
        raise app.UsageError('--sparsities must be in (0, 1)')
    if FLAGS.quick:
        FLAGS.rounds, FLAGS.turn_seconds, FLAGS.warmup = 2, 0.02, 2
    if FLAGS.warmup < 2 or FLAGS.rounds < 1:
        raise app.UsageError(
            '--warmup must be at least 2, --rounds at least 1')
    writes = not FLAGS.quick or FLAGS['json'].present
    json_path = FLAGS.json if writes else ''
    started = time.perf_counter()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as workdir:
        models = [measure_model(name, sparsities, workdir) for name in names]
    result = {
        'machine': machine.describe(),
        'load_average_start': [round(v, 2) for v in load_start],
        'load_average_end': [round(v, 2) for v in os.getloadavg()],
        'image_size': IMAGE_SIZE, 'tf_batches': list(TF_BATCHES),
        'litert_threads': list(LITERT_THREADS), 'sparsities': sparsities,
        'rounds': FLAGS.rounds, 'turn_seconds': FLAGS.turn_seconds,
        'turn_order': _turn_order([DENSE] + [f'{s:g}' for s in sparsities],
                                  0),
        'warmup': FLAGS.warmup, 'quick': FLAGS.quick,
        'tolerance': TOLERANCE, 'flops_convention': cost.FLOPS_CONVENTION,
        'models': models, 'goal': goal(models),
        'seconds': round(time.perf_counter() - started, 1)}
    print(render_docs.structured_speed_tables(result))
    print(render_docs.structured_goal(result))
    print(f"total {result['seconds']:.0f} s")
    if json_path:
        atomic.write_bytes(json_path,
                           (json.dumps(result, indent=2) + '\n').encode())
        plot(result, os.path.splitext(json_path)[0] + '.png')
        print(f'wrote {json_path}')


if __name__ == '__main__':
    app.run(main)
