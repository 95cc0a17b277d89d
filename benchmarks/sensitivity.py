r"""A sensitivity scan's suggestion against uniform pruning, equal parameters.

Two parts, each in its own process (the two examples define the same
flags):

- weight: the CNN of `examples/fashion_mnist_cnn.py` (`cnn()`),
  `structure=weight`, the scan's default sparsities 0.1 to 0.9;
- channel: the ResNet of `examples/fashion_mnist_channels.py` at widths
  24, 48 and 96 (`resnet(CHANNEL_WIDTHS)`, 174,850 parameters),
  `structure=channel`, `channel_criterion=l1`, sparsities
  `--channel_sparsities`.

Each part:
1. splits Fashion-MNIST's 60,000 training images: the last
   `--validation_examples` are held out (the validation split), the others
   train; the 10,000 test images serve only the final figures;
2. trains the model dense for `--train_epochs` epochs (Adam 1e-3, batch 128,
   seed 0);
3. scans it on the validation split (`tf_prune.sensitivity.scan`, accuracy)
   and suggests a map within `--max_drop` points there
   (`tf_prune.sensitivity.suggest`);
4. finds the uniform pruning (one `target_sparsity` for all) that leaves the
   same parameters (`tf_prune.sensitivity.uniform_like`: the parameters
   less the zeros of the pruned weights, or those of the shrunk model);
5. measures both one-shot (`tf_prune.prune(model, spec, one_shot=True)`):
   validation and test accuracy;
6. fine-tunes each for `--fine_tune_epochs` epochs on the training split
   (a fresh Adam 1e-3, batch 128, the same batches in the same order) with
   a `PruningCallback` whose schedule holds the target (`initial_sparsity`
   equal to `target_sparsity`, a mask update every 100 steps), and the
   dense model as well, for reference; measures test accuracy and the
   parameters left.

Writes `--results_dir`/sensitivity.json and sensitivity.png (each part's
scan, with the suggested and the uniform sparsities) and prints the table.

    python benchmarks/sensitivity.py [--parts=weight,channel]
"""
# pylint: disable=import-outside-toplevel

import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# The examples' models; importing an example defines its flags too, and
# the two examples define the same ones: each part imports one, in its own
# process. None of their flags is read here.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'examples'))

from absl import app, flags, logging  # noqa: E402

PARTS = ('weight', 'channel')
flags.DEFINE_list('parts', list(PARTS), 'The parts to run')
flags.DEFINE_integer('train_epochs', 2, 'Dense training epochs')
flags.DEFINE_integer('fine_tune_epochs', 1, 'Fine-tuning epochs after the '
                     'one-shot pruning (each model alike)')
flags.DEFINE_integer('validation_examples', 5000, 'Training images held out '
                     'to scan and suggest on')
flags.DEFINE_float('max_drop', 1.0, "The suggestion's budget: one-shot "
                   'validation accuracy drop, in points')
flags.DEFINE_list('channel_sparsities', ['0.25', '0.5', '0.75'],
                  "The channel part's scanned sparsities")
flags.DEFINE_string('results_dir', 'benchmarks/results', 'Where results go')
flags.DEFINE_bool('quick', False, 'Smoke run: 6,000 training images (1,000 '
                  'of them held out) and 2,000 test images')
flags.DEFINE_string('part', None, 'Internal: run one part and write its '
                    'figures as JSON to --out')
flags.DEFINE_string('out', None, 'Internal: the JSON file of --part')
FLAGS = flags.FLAGS

BATCH = 128
LEARNING_RATE = 1e-3
# The channel part's ResNet: narrower than the example's default, so that
# a scan of its groups stays quick.
CHANNEL_WIDTHS = (24, 48, 96)
FREQUENCY = 100
SEED = 0
RESULTS_NAME = 'sensitivity'
MODELS = {'weight': 'fashion_mnist_cnn', 'channel': 'fashion_mnist_resnet'}


def _data():
    """`(train, validation, test)` pairs of float32 images and labels."""
    from tf_prune.sensitivity import data
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    validation = FLAGS.validation_examples
    if FLAGS.quick:
        x_train, y_train = x_train[:6000], y_train[:6000]
        x_test, y_test = x_test[:2000], y_test[:2000]
        validation = 1000
    held_out = len(x_train) - validation
    scale = data.scale_images
    return ((scale(x_train[:held_out]), y_train[:held_out]),
            (scale(x_train[held_out:]), y_train[held_out:]),
            (scale(x_test), y_test))


def _model(part):
    if part == 'weight':
        from fashion_mnist_cnn import cnn
        return cnn()
    from fashion_mnist_channels import resnet
    return resnet(CHANNEL_WIDTHS)


def _compiled(model):
    import keras
    model.compile(keras.optimizers.Adam(LEARNING_RATE),
                  'sparse_categorical_crossentropy', metrics=['accuracy'])
    return model


def _fit(model, train, epochs, seed, callbacks=()):
    import keras
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    _compiled(model).fit(*train, batch_size=BATCH, epochs=epochs, verbose=0,
                         callbacks=list(callbacks))
    return time.perf_counter() - started


def _holding(spec):
    """`spec` with a schedule that holds its target from step 0."""
    import tf_prune
    target = tf_prune.get_pruning_hparams().parse(spec).target_sparsity
    return (f'{spec},initial_sparsity={target!r},begin_pruning_step=0,'
            f'sparsity_function_begin_step=0,sparsity_function_end_step=1,'
            f'pruning_frequency={FREQUENCY}')


def _parameters_left(pruned, dense, structure):
    """What a pruned model keeps: as `sensitivity.parameters_after` counts."""
    import numpy as np
    import tf_prune
    from tf_prune.keras.wrapper import find_wrappers
    if structure == 'channel':
        return int(tf_prune.shrink(pruned).count_params())
    zeros = sum(int(np.sum((p.mask * p.weight).numpy() == 0))
                for wrapper in find_wrappers(pruned)
                for p in wrapper.pruned_weights)
    return int(dense.count_params()) - zeros


def _run_part(part):
    """Trains, scans, suggests and compares one part; returns its figures."""
    import keras
    import tf_prune
    from tf_prune import sensitivity

    started = time.perf_counter()
    train, validation, test = _data()
    structure = part
    sparsities = (sensitivity.DEFAULT_SPARSITIES if part == 'weight' else
                  tuple(float(s) for s in FLAGS.channel_sparsities))
    keras.utils.set_random_seed(SEED)
    dense = _model(part)
    train_seconds = _fit(dense, train, FLAGS.train_epochs, SEED)
    dense_weights = dense.get_weights()
    on_validation = sensitivity.accuracy(*validation)
    on_test = sensitivity.accuracy(*test)

    clock = time.perf_counter()
    result = sensitivity.scan(dense, on_validation, sparsities,
                              structure=structure, verbose=0)
    scan_seconds = time.perf_counter() - clock
    print(f'{part}: scanned in {scan_seconds:.0f} s\n'
          f'{result.format_table()}', flush=True)
    clock = time.perf_counter()
    suggestion = sensitivity.suggest(result, FLAGS.max_drop / 100, dense,
                                     on_validation)
    suggest_seconds = time.perf_counter() - clock
    suggested_parameters = sensitivity.parameters_after(dense,
                                                        suggestion.spec)
    uniform = sensitivity.uniform_like(dense, suggested_parameters,
                                       structure)
    print(f'{part}: suggested {suggestion.spec}\n{part}: uniform '
          f'{uniform.spec}', flush=True)

    rows = []
    for name, spec, parameters in (
            ('suggested', suggestion.spec, suggested_parameters),
            ('uniform', uniform.spec, uniform.parameters)):
        copy = _model(part)
        copy.set_weights(dense_weights)
        pruned = tf_prune.prune(copy, spec, one_shot=True)
        row = {'name': name, 'spec': spec, 'parameters': parameters,
               'one_shot_validation_accuracy': on_validation(pruned),
               'one_shot_test_accuracy': on_test(pruned)}
        holding = _holding(spec)
        row['fine_tune_seconds'] = _fit(
            pruned, train, FLAGS.fine_tune_epochs, SEED + 1,
            [tf_prune.PruningCallback(holding)])
        row['fine_tune_spec'] = holding
        row['fine_tuned_test_accuracy'] = on_test(pruned)
        row['fine_tuned_parameters'] = _parameters_left(pruned, dense,
                                                        structure)
        rows.append(row)
        print(f'{part}: {name} {row}', flush=True)
    reference = _model(part)
    reference.set_weights(dense_weights)
    dense_row = {'name': 'dense', 'spec': None,
                 'parameters': int(dense.count_params()),
                 'one_shot_validation_accuracy': result.base_metric,
                 'one_shot_test_accuracy': on_test(dense)}
    dense_row['fine_tune_seconds'] = _fit(
        reference, train, FLAGS.fine_tune_epochs, SEED + 1)
    dense_row['fine_tuned_test_accuracy'] = on_test(reference)
    dense_row['fine_tuned_parameters'] = dense_row['parameters']
    rows.insert(0, dense_row)
    return {
        'part': part, 'model': MODELS[part], 'structure': structure,
        'criterion': result.criterion, 'sparsities': list(sparsities),
        'train_epochs': FLAGS.train_epochs,
        'fine_tune_epochs': FLAGS.fine_tune_epochs,
        'train_examples': len(train[0]),
        'validation_examples': len(validation[0]),
        'test_examples': len(test[0]), 'batch': BATCH,
        'max_drop_points': FLAGS.max_drop,
        'suggestion': {
            'spec': suggestion.spec, 'sparsities': suggestion.sparsities,
            'validation_accuracy': suggestion.metric,
            'drop': suggestion.drop,
            'predicted_drop': suggestion.predicted_drop,
            'tries': [list(t) for t in suggestion.tries]},
        'uniform': {'spec': uniform.spec,
                    'target_sparsity': uniform.target_sparsity,
                    'evaluations': uniform.evaluations},
        'scan': {'base_metric': result.base_metric,
                 'units': [vars(u) for u in result.units],
                 'rows': [vars(r) for r in result.rows]},
        'rows': rows,
        'seconds': {'train': round(train_seconds, 1),
                    'scan': round(scan_seconds, 1),
                    'suggest': round(suggest_seconds, 1),
                    'part': round(time.perf_counter() - started, 1)}}


def _run_in_process(part, directory):
    out = os.path.join(directory, f'{part}.json')
    process = subprocess.run(
        [sys.executable, os.path.abspath(__file__), f'--part={part}',
         f'--out={out}', f'--train_epochs={FLAGS.train_epochs}',
         f'--fine_tune_epochs={FLAGS.fine_tune_epochs}',
         f'--validation_examples={FLAGS.validation_examples}',
         f'--max_drop={FLAGS.max_drop}', f'--quick={FLAGS.quick}',
         f'--channel_sparsities={",".join(FLAGS.channel_sparsities)}'],
        check=False)
    if process.returncode != 0:
        raise SystemExit(f'the {part} part failed')
    with open(out) as file:
        return json.load(file)


def _plot(parts, path):
    """Each part's scan: validation accuracy against sparsity, a line per
    unit, the suggested sparsity of each unit marked, uniform's dashed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from tf_prune.core import atomic
    figure, axes = plt.subplots(1, len(parts), figsize=(6.4 * len(parts), 4.6),
                                dpi=100, squeeze=False)
    for axis, part in zip(axes[0], parts):
        scan = part['scan']
        chosen = part['suggestion']['sparsities']
        for unit in scan['units']:
            points = [(0.0, scan['base_metric'])] + [
                (r['sparsity'], r['metric']) for r in scan['rows']
                if r['unit'] == unit['name']]
            line, = axis.plot(*zip(*[(s, 100 * m) for s, m in points]),
                              marker='.', label=unit['name'])
            pick = chosen[unit['name']]
            axis.plot([pick], [100 * dict(points)[pick]], marker='o',
                      markersize=9, fillstyle='none', color=line.get_color())
        axis.axvline(part['uniform']['target_sparsity'], color='gray',
                     linestyle='--', label='uniform, equal parameters')
        axis.set_xlabel(f"sparsity of one {part['structure']} unit alone")
        axis.set_ylabel('validation accuracy (%)')
        axis.set_title(f"{part['model']} ({part['structure']}); circles: "
                       f"suggested")
        axis.grid(alpha=0.3)
        axis.legend(fontsize='x-small', ncol=2)
    figure.tight_layout()
    with atomic.atomic_output(path) as temporary:
        figure.savefig(temporary, format='png')
    plt.close(figure)


def main(argv):
    del argv
    logging.set_verbosity(logging.ERROR)
    if FLAGS.part:
        import tensorflow as tf
        tf.get_logger().setLevel('ERROR')
        figures = _run_part(FLAGS.part)
        from tf_prune.core import atomic
        atomic.write_bytes(FLAGS.out, json.dumps(figures).encode())
        return 0
    unknown = sorted(set(FLAGS.parts) - set(PARTS))
    if unknown:
        raise app.UsageError(f'--parts: unknown {unknown}; choose from '
                             f'{", ".join(PARTS)}')
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        parts = [_run_in_process(part, directory) for part in PARTS
                 if part in FLAGS.parts]
    import machine
    import render_docs
    from tf_prune.core import atomic
    result = {'machine': machine.describe(), 'quick': FLAGS.quick,
              'seconds': round(time.perf_counter() - started, 1),
              'load_average_end': list(os.getloadavg()), 'parts': parts}
    base = os.path.join(FLAGS.results_dir, RESULTS_NAME)
    atomic.write_bytes(base + '.json',
                       (json.dumps(result, indent=1) + '\n').encode())
    _plot(parts, base + '.png')
    print('\n' + render_docs.sensitivity_table(result))
    return 0


if __name__ == '__main__':
    app.run(main)
