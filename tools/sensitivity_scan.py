r"""Scans how much each layer of a model can lose, and suggests a spec.

    python tools/sensitivity_scan.py --model=model.keras --data=fashion_mnist \
        --max_drop=1 --output_dir=/tmp/scan

1. Prunes each prunable weight (`--structure=weight`, by |w|) or channel
   group (`--structure=channel`, by `--criterion`) alone, one-shot, at each
   of `--sparsities`, and measures `--metric` on `--data`
   (`tf_prune.sensitivity.scan`); prints the table.
2. Suggests a per-weight spec (`weight_sparsity_map`) that removes the most
   parameters while the whole model, pruned one-shot with it, loses at most
   `--max_drop` points (1.0 = 0.01 accuracy) (`tf_prune.sensitivity.suggest`);
   prints it as a `--pruning_hparams` flag.
3. Compares it with uniform pruning (one `target_sparsity` for all) that
   leaves the same number of parameters (`tf_prune.sensitivity.uniform_like`),
   both one-shot, with no fine-tuning.

--model is a .keras file or a tf_prune training directory. A pruned model
(a training directory always holds one) is scanned stripped: its masks
folded into its weights (`tf_prune.strip_pruning`), as it computes.
--data is `fashion_mnist` (its 10,000 test images, read from --data_dir) or
an .npz file with arrays `x_test` and `y_test` (integer labels or one-hot
rows).

With --output_dir, the scan goes to `scan.json` there as it runs (row by
row), and the run ends by writing `scan.csv`, `scan.png` (the metric
against sparsity, a line per unit) and `suggestion.json` (the spec, the
per-unit sparsities, the allocations tried and the comparison). Other
files in the directory are left alone. A run finding a `scan.json` of the
same scan (model, data, structure, criterion and sparsities) continues it:
an interrupted scan resumes where it stopped, and a finished one is reused,
so a second run with another --max_drop only suggests.

Bad input (a missing or unreadable model or data file, data that does not
fit the model, nothing to prune or to score with --criterion, bad
sparsities) prints one line on stderr and exits with status 2, writing
nothing. TensorFlow's own logs and warnings show with --verbose.
"""

import dataclasses
import json
import math
import os
import shlex
import sys
import warnings

# TensorFlow reads its C++ log level when it is imported, before absl parses
# the flags: so a plain --verbose is looked for in sys.argv.
os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0' if '--verbose' in sys.argv else '2'

from absl import app, flags, logging  # noqa: E402
import numpy as np  # noqa: E402

import tf_prune  # noqa: E402
from tf_prune import sensitivity  # noqa: E402
from tf_prune.core import atomic  # noqa: E402
from tf_prune.core import errors  # noqa: E402
from tf_prune.core import hparams as hparams_lib  # noqa: E402
from tf_prune.export import sources  # noqa: E402
from tf_prune.keras.wrapper import find_wrappers  # noqa: E402
from tf_prune.sensitivity.data import DEFAULT_DATA_DIR  # noqa: E402
from tf_prune.sensitivity.data import DataError  # noqa: E402
from tf_prune.sensitivity.scan import ScanResult  # noqa: E402
from tf_prune.sensitivity.scan import metric_of  # noqa: E402
from tf_prune.sensitivity.scan import units_of  # noqa: E402

flags.DEFINE_string('model', None, 'The model: a .keras file or a tf_prune '
                    'training directory')
flags.DEFINE_string('data', None, 'The evaluation data: fashion_mnist (its '
                    'test split) or an .npz file with x_test and y_test')
flags.DEFINE_string('data_dir', DEFAULT_DATA_DIR,
                    'Directory of the Fashion-MNIST idx files, for '
                    '--data=fashion_mnist')
flags.DEFINE_enum('metric', 'accuracy', ['accuracy'],
                  'The metric: accuracy (the largest output is the label)')
flags.DEFINE_list('sparsities', [f'{s:g}' for s in
                                 sensitivity.DEFAULT_SPARSITIES],
                  'The sparsities each unit is scanned at, in (0, 1)')
flags.DEFINE_enum('structure', 'weight', ['weight', 'channel'],
                  'Scan each prunable weight, or each channel group')
flags.DEFINE_enum('criterion', 'l1', ['l1', 'l2', 'bn_scale'],
                  'How channels are ranked, with --structure=channel '
                  '(taylor needs training steps, which a scan has none of)')
flags.DEFINE_float('max_drop', 1.0, 'The largest acceptable one-shot drop '
                   'of the metric, in points (1.0 = 0.01 accuracy)')
flags.DEFINE_string('output_dir', None, 'Where scan.json, scan.csv, scan.png '
                    'and suggestion.json go (none: nothing is written)')
flags.DEFINE_bool('verbose', False,
                  "Also print TensorFlow's logs and warnings")
FLAGS = flags.FLAGS

NAME = 'sensitivity_scan'
SCAN_JSON = 'scan.json'
OUTPUTS = (SCAN_JSON, 'scan.csv', 'scan.png', 'suggestion.json')
# Two runs of one model on one dataset measure the same base metric; a
# scan.json whose base differs more is of another model or data.
_SAME_METRIC = 1e-9


class BadInput(ValueError):
    """Input the tool refuses, with the one line that says why."""


def _flag(name):
    """A list flag as the user gave it, for messages."""
    return f'--{name}={",".join(FLAGS[name].value)}'


def _sparsities():
    values = []
    for text in FLAGS.sparsities:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0 < value < 1:
            raise BadInput(f'{_flag("sparsities")}: {text!r} is not a '
                           f'sparsity in (0, 1); give distinct values such '
                           f'as 0.3,0.6,0.9')
        values.append(value)
    if not values or len(set(values)) != len(values):
        raise BadInput(f'{_flag("sparsities")}: give distinct sparsities in '
                       f'(0, 1), such as 0.3,0.6,0.9')
    return sorted(values)


def _check_flags():
    """`(sparsities, max_drop as a fraction)`."""
    if not FLAGS.model or not FLAGS.data:
        raise BadInput('give --model (a .keras file or a training directory) '
                       'and --data (fashion_mnist, or an .npz file with '
                       'x_test and y_test)')
    sparsities = _sparsities()
    if not (math.isfinite(FLAGS.max_drop) and FLAGS.max_drop >= 0):
        raise BadInput(f'--max_drop={FLAGS.max_drop:g}: give the largest '
                       f'acceptable drop in points (1.0 = 0.01 accuracy), '
                       f'0 or more')
    if FLAGS['criterion'].present and FLAGS.structure != 'channel':
        raise BadInput('--criterion ranks channels, with '
                       '--structure=channel; weights are ranked by |w|')
    return sparsities, FLAGS.max_drop / 100


def _output_dir():
    """The absolute --output_dir, or None; checked, not made."""
    if not FLAGS.output_dir:
        return None
    try:
        atomic.check_creatable(FLAGS.output_dir,
                               f'--output_dir={FLAGS.output_dir}')
    except ValueError as error:
        raise BadInput(str(error)) from None
    return os.path.abspath(FLAGS.output_dir)


def _load_model(path):
    """`(model, whether it was pruned)`: the model, stripped if pruned."""
    try:
        kind = sources.kind(path)
        if kind not in ('keras', 'keras_checkpoint'):
            what = ('a SavedModel' if kind == 'saved_model'
                    else 'a TF1 checkpoint directory')
            raise BadInput(f'{path} is {what}; the scan needs a Keras model: '
                           f'a .keras file or a tf_prune training directory')
        model = sources.load(path)
    except OSError as error:
        raise BadInput(f'cannot read {error.filename or path}: '
                       f'{error.strerror or error}') from error
    if find_wrappers(model):
        return tf_prune.strip_pruning(model), True
    return model, False


def _shape(shape):
    return '(' + ', '.join(str(d) for d in shape) + ')'


def _check_fits(model, x, y):
    """Raises BadInput unless `model` maps `x` to class scores for `y`."""
    source = f'--data={FLAGS.data}'
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise BadInput(f'{model.name} has {len(model.inputs)} inputs and '
                       f'{len(model.outputs)} outputs; --metric=accuracy '
                       f'scores a model of one input and one output')
    expected = tuple(model.inputs[0].shape)[1:]
    if np.asarray(x).dtype.kind not in 'biuf' or x.ndim != len(expected) + 1 \
            or any(e is not None and e != d
                   for e, d in zip(expected, x.shape[1:])):
        raise BadInput(f'{source}: x_test holds {x.dtype} examples of shape '
                       f'{_shape(x.shape[1:])}; {model.name} takes '
                       f'{_shape(expected)}')
    output = tuple(model.outputs[0].shape)
    classes = output[-1]
    if len(output) != 2 or classes is None or classes < 2:
        raise BadInput(f'{model.name} outputs shape {_shape(output)}; '
                       f'--metric=accuracy needs a score per class (two or '
                       f'more) for each example')
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == classes:
        return  # one-hot rows
    if y.ndim != 1 or y.dtype.kind not in 'biuf' or (
            y.dtype.kind == 'f' and not np.all(y == np.round(y))):
        raise BadInput(f'{source}: y_test holds {y.dtype} of shape '
                       f'{_shape(y.shape)}; {model.name} scores {classes} '
                       f'classes: give integer labels 0 to {classes - 1}, '
                       f'one per example, or one-hot rows of {classes}')
    if y.min() < 0 or y.max() >= classes:
        raise BadInput(f'{source}: y_test holds labels from {y.min():g} to '
                       f'{y.max():g}; {model.name} scores {classes} classes, '
                       f'0 to {classes - 1}')


def _base_metric(evaluate, model):
    try:
        return metric_of(evaluate, model)
    except Exception as error:  # pylint: disable=broad-except
        raise BadInput(f'{model.name} cannot be evaluated on '
                       f'--data={FLAGS.data}: {errors.one_line(error)}'
                       ) from error


def _check_resumable(path, structure, criterion, sparsities, units, base):
    """The rows of the scan at `path` a run continues from (0: none).

    Raises:
      BadInput: `path` holds something else, or another model's scan.
    """
    if not os.path.exists(path):
        return 0
    try:
        found = ScanResult.from_json(path)
    except ValueError:
        raise BadInput(f'--output_dir={FLAGS.output_dir} holds a {SCAN_JSON} '
                       f'that is not a sensitivity scan; remove it or choose '
                       f'another --output_dir') from None
    differ = [name for name, theirs, ours in (
        ('structure', found.structure, structure),
        ('criterion', found.criterion, criterion),
        ('sparsities', tuple(found.sparsities), tuple(sparsities)),
        ('units', found.units, units)) if theirs != ours]
    if differ or abs(found.base_metric - base) > _SAME_METRIC:
        plural = differ[1:] or differ[:1] in (['sparsities'], ['units'])
        verb = 'differ' if plural else 'differs'
        what = (f'its {" and ".join(differ)} {verb}' if differ else
                f'another model or data: its unpruned metric is '
                f'{found.base_metric:.4f}, this run\'s {base:.4f}')
        raise BadInput(f'--output_dir={FLAGS.output_dir} holds the '
                       f'{SCAN_JSON} of another scan ({what}); remove it or '
                       f'choose another --output_dir')
    return len(found.rows)


def _points(drop):
    return f'{100 * drop:.2f} points'


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What a run works on, all checked before anything is written."""
    sparsities: list
    max_drop: float  # a fraction of the metric
    output_dir: str  # or None
    model: object
    pruned: bool  # given pruned, and stripped here
    evaluate: object
    examples: int
    units: list
    base_metric: float
    done: int  # rows of a scan.json the run continues from


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The suggestion against uniform pruning of the same size, one-shot.

    Parameters are `sensitivity.parameters_after`'s: the model's less the
    zeros of its pruned weights (`--structure=weight`), or the shrunk
    model's (`--structure=channel`).
    """
    given_parameters: int
    suggested_parameters: int
    uniform: sensitivity.Uniform
    uniform_metric: float


def _compare(inputs, suggestion):
    model = inputs.model
    uniform_pruning = sensitivity.UniformPruning(model, FLAGS.structure,
                                                 FLAGS.criterion)
    suggested = sensitivity.parameters_after(model, suggestion.spec)
    uniform = uniform_pruning.like(suggested)
    return Comparison(
        uniform_pruning.parameters(0.0), suggested, uniform,
        metric_of(inputs.evaluate, tf_prune.prune(model, uniform.spec,
                                                  one_shot=True)))


def _comparison_rows(result, suggestion, comparison):
    given = comparison.given_parameters
    uniform = comparison.uniform
    rows = [('', 'parameters', 'fraction', FLAGS.metric)]
    for name, parameters, metric in (
            ('as given', given, result.base_metric),
            ('suggested', comparison.suggested_parameters, suggestion.metric),
            (f'uniform {uniform.target_sparsity:.4f}', uniform.parameters,
             comparison.uniform_metric)):
        rows.append((name, f'{parameters:,}', f'{parameters / given:.3f}',
                     f'{metric:.4f}'))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ['  ' + '  '.join(cell.ljust(w) if i == 0 else cell.rjust(w)
                             for i, (cell, w) in enumerate(zip(row, widths)))
            for row in rows]


def _report(result, suggestion, max_drop, comparison):
    """Prints the suggestion and the comparison."""
    units = [u for u, s in suggestion.sparsities.items() if s]
    print()
    if units:
        print(f'Suggested for --max_drop={FLAGS.max_drop:g} '
              f'({_points(max_drop)}): {len(units)} of '
              f'{len(suggestion.sparsities)} units pruned, one-shot '
              f'{FLAGS.metric} {suggestion.metric:.4f} '
              f'(drop {_points(suggestion.drop)}; the scan predicted '
              f'{_points(suggestion.predicted_drop)}):')
    else:
        print(f'No unit can be pruned within --max_drop={FLAGS.max_drop:g} '
              f'({_points(max_drop)}) at the scanned sparsities; the spec '
              f'prunes nothing:')
    print(f'  --pruning_hparams={shlex.quote(suggestion.spec)}')
    print()
    counted = ('less the zeros of the pruned weights'
               if FLAGS.structure == 'weight' else 'of the shrunk model')
    print(f'One-shot, no fine-tuning. Uniform: one target_sparsity for all, '
          f'leaving as many parameters as the suggestion (parameters: '
          f'{counted}):')
    for line in _comparison_rows(result, suggestion, comparison):
        print(line.rstrip())


def _suggestion_json(result, suggestion, max_drop, comparison):
    uniform = comparison.uniform
    return {
        'model': FLAGS.model, 'data': FLAGS.data, 'metric': FLAGS.metric,
        'structure': result.structure, 'criterion': result.criterion,
        'max_drop': max_drop, 'max_drop_points': FLAGS.max_drop,
        'base_metric': result.base_metric,
        'parameters': comparison.given_parameters,
        'suggested': {
            'spec': suggestion.spec, 'sparsities': suggestion.sparsities,
            'metric': suggestion.metric, 'drop': suggestion.drop,
            'predicted_drop': suggestion.predicted_drop,
            'parameters': comparison.suggested_parameters,
            'scan_parameters_removed': suggestion.parameters_removed,
            'scan_flops_removed': suggestion.flops_removed,
            'tries': [t._asdict() for t in suggestion.tries]},
        'uniform': {
            'spec': uniform.spec, 'target_sparsity': uniform.target_sparsity,
            'metric': comparison.uniform_metric,
            'drop': result.base_metric - comparison.uniform_metric,
            'parameters': uniform.parameters}}


def _prepare():
    """The run's `Inputs`.

    Raises:
      ValueError: bad input (`BadInput`, `ModelFileError`, nothing to
        prune), with its one line.
    """
    sparsities, max_drop = _check_flags()
    output_dir = _output_dir()
    model, pruned = _load_model(FLAGS.model)
    if FLAGS.data != 'fashion_mnist' and not os.path.exists(FLAGS.data):
        raise BadInput(f'--data={FLAGS.data} does not exist')
    try:
        x, y = sensitivity.load_evaluation_data(FLAGS.data, FLAGS.data_dir)
    except DataError as error:
        raise BadInput(str(error)) from error
    _check_fits(model, x, y)
    hparams = hparams_lib.as_hparams(
        f'structure={FLAGS.structure},channel_criterion={FLAGS.criterion}')
    units = units_of(model, hparams)  # ValueError: nothing to prune or score
    evaluate = sensitivity.accuracy(x, y)
    base = _base_metric(evaluate, model)
    done = 0
    if output_dir:
        done = _check_resumable(os.path.join(output_dir, SCAN_JSON),
                                FLAGS.structure, FLAGS.criterion, sparsities,
                                units, base)
    return Inputs(sparsities, max_drop, output_dir, model, pruned, evaluate,
                  len(x), units, base, done)


def _run(inputs):
    model, sparsities = inputs.model, inputs.sparsities
    if inputs.pruned:
        print(f'{FLAGS.model} holds a pruned model: it is scanned stripped, '
              f'its masks folded into its weights (strip_pruning).')
    what = 'weights' if FLAGS.structure == 'weight' else 'channel groups'
    total = len(inputs.units) * len(sparsities)
    print(f'{model.name}: {len(inputs.units)} {what} at {len(sparsities)} '
          f'{"sparsity" if len(sparsities) == 1 else "sparsities"}, {total} '
          f'evaluations on {inputs.examples:,} examples; {FLAGS.metric} '
          f'{inputs.base_metric:.4f} as given.')
    results_path = None
    if inputs.output_dir:
        results_path = os.path.join(inputs.output_dir, SCAN_JSON)
        if inputs.done:
            what = ('reused' if inputs.done == total
                    else 'the scan continues')
            print(f'{results_path} holds {inputs.done} of them: {what}.')
    result = sensitivity.scan(
        model, inputs.evaluate, sparsities, FLAGS.structure, FLAGS.criterion,
        results_path=results_path, verbose=int(sys.stdout.isatty()))
    print()
    print(result.format_table())
    suggestion = sensitivity.suggest(result, inputs.max_drop, model,
                                     inputs.evaluate)
    comparison = _compare(inputs, suggestion)
    _report(result, suggestion, inputs.max_drop, comparison)
    if inputs.output_dir:
        directory = inputs.output_dir
        result.to_csv(os.path.join(directory, 'scan.csv'))
        result.plot(os.path.join(directory, 'scan.png'))
        summary = _suggestion_json(result, suggestion, inputs.max_drop,
                                   comparison)
        atomic.write_bytes(os.path.join(directory, 'suggestion.json'),
                           (json.dumps(summary, indent=1) + '\n').encode())
        print()
        print('Wrote ' + ', '.join(os.path.join(directory, name)
                                   for name in OUTPUTS))


def _fail(message):
    print(f'{NAME}: {message}', file=sys.stderr)
    return 2


def main(argv):
    del argv
    if not FLAGS.verbose:
        # TF's notes (retracing, say) and Keras' warnings; the user cannot
        # act on them.
        logging.set_verbosity(logging.ERROR)
        warnings.simplefilter('ignore')
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        tf.get_logger().setLevel('ERROR')
    try:
        inputs = _prepare()
    except ValueError as error:  # BadInput, ModelFileError, nothing to prune
        return _fail(errors.one_line(error))
    lock = None
    try:
        if inputs.output_dir:
            lock = atomic.DirectoryLock(inputs.output_dir, 'sensitivity scan')
            lock.acquire()
        _run(inputs)
    except tf_prune.DirectoryInUseError as error:
        return _fail(error)
    except OSError as error:
        return _fail(f'cannot write in --output_dir={FLAGS.output_dir}: '
                     f'{error.strerror or error}')
    finally:
        if lock is not None:
            lock.release()
    return 0


if __name__ == '__main__':
    app.run(main)
